"""The payments contract on a real anvil: a paid verified session's deposits and settlements replayed into it leave
every account holding what bmoe's replay of the chain says; withdrawals, overdraws and wrong totals."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bmoe.ethereum.anvil import DEV_CHAIN_ID, Anvil
from bmoe.ethereum.errors import ContractReverted
from bmoe.ethereum.payments import PaymentsContract, replay_payments
from bmoe.ledger.blocks import Block
from bmoe.ledger.chainstore import ChainStore
from bmoe.ledger.pricing import Pricing
from bmoe.run.generation import GenerationSession
from bmoe.run.payments import PaymentTerms, bill
from tests.engines.anvil import anvil_node  # noqa: F401
from tests.ethereum.helpers import funded_account
from tests.generation.helpers import generate, liar, model, session

TERMS = PaymentTerms(Pricing(base=100, floor=40, cap=300), {"alice": 10**6, "bob": 3 * 10**5})


@dataclass
class Replayed:
    session: GenerationSession
    blocks: list[Block]
    contract: PaymentsContract
    settled: int


@pytest.fixture(scope="module")
def replayed(anvil_node: Anvil, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Replayed]:  # noqa: F811
    run_dir: Path = tmp_path_factory.mktemp("paid")
    s = session(model(), {4: liar(1, 2)}, run_dir=run_dir, payments=TERMS, max_batch=4)
    generate(s, payer="alice")
    with ChainStore(run_dir / "chain.sqlite", readonly=True) as chain:
        blocks = list(chain.iter_blocks())
    validator = funded_account(anvil_node, "validator")
    contract = PaymentsContract.deploy(anvil_node.url, DEV_CHAIN_ID, validator, [validator.address])
    yield Replayed(s, blocks, contract, replay_payments(contract, blocks))


def _settlements(replayed: Replayed) -> list[dict[str, Any]]:
    return [dict(tx.payload) for block in replayed.blocks for tx in block.transactions if tx.kind == "settlement"]


def test_every_account_on_the_contract_holds_what_the_replay_of_the_chain_says(replayed: Replayed) -> None:
    rows = bill(replayed.session.node.view())
    assert replayed.settled == len(_settlements(replayed)) == replayed.contract.settlements() > 0
    assert {row["role"] for row in rows} == {"requester", "edge", "validator"}
    assert {row["account"]: replayed.contract.balance(row["account"]) for row in rows} == {
        row["account"]: row["balance"] for row in rows}


def test_a_chunk_settled_twice_or_by_a_non_validator_is_refused(replayed: Replayed, anvil_node: Anvil) -> None:  # noqa: F811
    first = _settlements(replayed)[0]
    with pytest.raises(ContractReverted, match="already settled"):
        replayed.contract.settle(first, replayed.session.validator.address)
    stranger = replayed.contract.as_account(funded_account(anvil_node, "stranger"))
    with pytest.raises(ContractReverted, match="not a validator"):
        stranger.settle({**first, "chunk": 10**6}, replayed.session.validator.address)


def test_a_settlement_that_overdraws_or_does_not_add_up_is_refused_and_moves_nothing(replayed: Replayed) -> None:
    validator = replayed.session.validator.address
    fresh = {**copy.deepcopy(_settlements(replayed)[0]), "chunk": 10**6}
    held = replayed.contract.balance("bob")
    overdraw = copy.deepcopy(fresh)
    overdraw["charges"] = [{"payer": "bob", "tokens": 1, "amount": held + 1}]
    overdraw["validator"] = held + 1 - sum(c["amount"] for c in overdraw["credits"])
    with pytest.raises(ContractReverted, match="overdraw"):
        replayed.contract.settle(overdraw, validator)
    skimmed = {**fresh, "validator": fresh["validator"] + 1}
    with pytest.raises(ContractReverted, match="totals differ"):
        replayed.contract.settle(skimmed, validator)
    assert replayed.contract.balance("bob") == held


def test_an_edge_withdraws_its_earnings_to_the_address_bound_to_it_and_never_more(replayed: Replayed,
                                                                                  anvil_node: Anvil) -> None:  # noqa: F811
    edge = replayed.session.edges[0].address
    owner = funded_account(anvil_node, "edge-0-owner", ether=1)
    replayed.contract.bind_owner(edge, owner.address)
    as_owner = replayed.contract.as_account(owner)
    earned = replayed.contract.balance(edge)
    assert earned > 0
    with pytest.raises(ContractReverted, match="overdraw"):
        as_owner.withdraw(edge, earned + 1)
    with pytest.raises(ContractReverted, match="not the account's owner"):
        replayed.contract.withdraw(edge, 1)
    web3 = replayed.contract.web3
    before = web3.eth.get_balance(owner.address)
    sent = as_owner.withdraw(edge, earned)
    receipt = web3.eth.get_transaction_receipt(sent.tx_hash)  # type: ignore[arg-type]
    fee = int(receipt["gasUsed"]) * int(receipt["effectiveGasPrice"])
    assert web3.eth.get_balance(owner.address) == before + earned - fee
    assert replayed.contract.balance(edge) == 0
    with pytest.raises(ContractReverted, match="the account has an owner"):
        replayed.contract.bind_owner(edge, owner.address)
