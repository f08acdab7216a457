"""Stake, rewards and slashing on chain: what the contract holds equals what bmoe's ``Balance`` computes for the
same records in the same order (rewards of a phase's decisions, then that phase's slashes, capped at the
balance), and an edge slashed below the minimum stake can no longer commit."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bmoe.ethereum.anvil import DEV_CHAIN_ID, Anvil
from bmoe.ethereum.contract import LedgerContract
from bmoe.ethereum.errors import ContractReverted
from bmoe.ethereum.records import BlockRecords
from bmoe.ledger.economics import Balance
from tests.engines.anvil import anvil_node  # noqa: F401
from tests.ethereum.helpers import (
    ACCEPTED,
    DISSENT,
    EDGES,
    RESULT,
    UPDATE,
    Chain,
    enrolment,
    funded_account,
)

STAKE, REWARD, SLASH, MIN_STAKE = 100, 5, 80, 30


@pytest.fixture(scope="module")
def ledger(anvil_node: Anvil) -> Iterator[LedgerContract]:  # noqa: F811
    validator = funded_account(anvil_node, "economics validator")
    terms = enrolment([validator.address], stakes=(STAKE,) * len(EDGES), reward=REWARD, slash=SLASH,
                      min_stake=MIN_STAKE)
    contract, _ = LedgerContract.deploy(anvil_node.url, DEV_CHAIN_ID, validator, terms)
    chain = Chain(contract)
    chain.seal(chain.block())
    yield contract


def expected_balances(blocks: list[BlockRecords]) -> dict[bytes, Balance]:
    """bmoe's economics applied to ``blocks`` in the state machine's order."""
    balances = {edge: Balance(STAKE) for edge in EDGES}
    for block in blocks:
        for phase in (RESULT, UPDATE):
            for decision in (d for d in block.decisions if d.phase == phase and d.status == ACCEPTED):
                for edge in decision.supporters:
                    balances[edge].earned += REWARD
            for record in (m for m in block.misbehaviours if m.phase == phase and m.reason == DISSENT):
                balances[record.edge].slash(SLASH)
    return balances


def test_balances_on_chain_equal_bmoes_economics_and_a_slash_never_takes_more_than_the_balance(
        ledger: LedgerContract) -> None:
    chain, sealed = Chain(ledger), []
    for index in range(2):  # edge 5: +5, -80, +10 -> 35, then +5, -40 (80 capped at the balance), +10 -> 10
        block = chain.block(**chain.template(f"paid-{index}"))
        chain.seal(block)
        sealed.append(block)
    expected = expected_balances(sealed)
    for edge in EDGES:
        assert ledger.balance(edge.hex()) == expected[edge]
    liar = ledger.balance(EDGES[4].hex())
    assert (liar.earned, liar.slashed, liar.balance) == (30, 120, 10)
    assert ledger.balance(EDGES[0].hex()).balance == STAKE + 8 * REWARD


def test_an_edge_below_the_minimum_stake_can_no_longer_commit(ledger: LedgerContract) -> None:
    assert ledger.balance(EDGES[4].hex()).balance < MIN_STAKE
    chain = Chain(ledger)
    with pytest.raises(ContractReverted, match="committer holds less than the minimum stake"):
        chain.seal(chain.block(**chain.template("slashed out")))
