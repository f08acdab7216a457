"""A validator that forges a decision and posts it. Under the tolerance comparison the groups are the validator's
claim: it moves an honest edge into the attackers' group, which then holds a majority, and accepts an attacker's
answer. The ledger's rules and the contract's checks hold (every supporter committed, the quorum is met, the
accepted CID is a supporter's); only the tensors say otherwise. `bmoe audit`, replaying the chain the contract
sealed and re-deriving every group from the committed answers in the store, names the forged block."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from bmoe.ethereum.accounts import derive_eth_account
from bmoe.ethereum.anvil import Anvil
from bmoe.ethereum.records import block_records
from bmoe.ethereum.sealer import EthereumSealer
from bmoe.ethereum.sender import fund
from bmoe.ledger.blocks import Block
from bmoe.ledger.keys import Identity
from bmoe.ledger.node import Proposal
from bmoe.ledger.state import apply_transaction, begin_block, finish_block, state_root
from bmoe.ledger.transactions import Transaction, sign_transaction
from bmoe.run.config import RunConfig
from bmoe.run.session import Session
from tests.cli.in_process import bmoe_here as bmoe
from tests.engines.anvil import anvil_node  # noqa: F401
from tests.ethereum.helpers import ETHER, dev_sender

SEED = 23


def _forged(transactions: tuple[Transaction, ...], validator: Identity, attackers: list[str]) -> list[Transaction]:
    """The round's transactions with one result decision forged by ``validator``: an honest edge moved into the
    attackers' group, which then holds a majority and whose answer (an attacker's) is accepted; the records
    against the attackers on that expert dropped; the validator's later transactions renumbered."""
    commitment = next(tx for tx in transactions if tx.kind == "commitment" and tx.sender == attackers[0])
    entry = commitment.payload["results"][0]
    expert = entry["expert"]
    forged: list[Transaction] = []
    nonce = None
    for tx in transactions:
        if tx.sender != validator.address:
            forged.append(tx)
            continue
        nonce = tx.nonce if nonce is None else nonce
        payload: dict[str, Any] = dict(tx.payload)
        if tx.kind == "acceptance":
            decisions = []
            for decision in payload["decisions"]:
                if decision["expert"] == expert:
                    honest = sorted(edge for group in decision["groups"] for edge in group if edge not in attackers)
                    decision = dict(decision, cid=entry["cid"], digest=entry["digest"],
                                    groups=[sorted([*attackers, honest[0]]), honest[1:]])
                decisions.append(decision)
            payload["decisions"] = decisions
        elif tx.kind == "misbehaviour" and payload["phase"] == "result":
            payload["records"] = [r for r in payload["records"] if r["expert"] != expert]
            if not payload["records"]:
                continue
        forged.append(sign_transaction(validator, tx.kind, payload, nonce))
        nonce += 1
    return forged


def test_audit_names_a_forged_decision_the_contract_accepted(anvil_node: Anvil, tmp_path: Path) -> None:  # noqa: F811
    fund(dev_sender(anvil_node), [derive_eth_account(SEED, "validator-0").address], 10 * ETHER)
    config = RunConfig(dataset="synthetic", num_experts=4, top_k=2, num_edges=5, hidden=16, batch_size=32, lr=0.2,
                       eval_every=100, difficulty=4, seed=SEED, malicious_ratio=0.4, attack_params={"probability": 1.0},
                       comparison="tolerance", consensus="ethereum", rpc_url=anvil_node.url)
    run_dir = tmp_path / "run"
    with Session(config, run_dir=run_dir) as session:
        session.train(rounds=1)
    with Session(config, run_dir=run_dir) as session:
        sealer = session.node.sealer
        assert isinstance(sealer, EthereumSealer)
        attackers = [edge.address for edge in session.ids.edges[-2:]]

        def forging(proposal: Proposal) -> tuple[Block, float]:
            state = sealer.state()
            transactions = _forged(proposal.transactions, proposal.proposer, attackers)
            working = begin_block(state)
            for tx in transactions:
                apply_transaction(working, tx)  # the ledger's rules hold: only the tensors say it is forged
            finish_block(working, proposal.height)
            block = sealer.build(dataclasses.replace(proposal, transactions=tuple(transactions),
                                                     state_root=state_root(working)))
            records, _ = block_records(state, block)
            return sealer.post(block, records), 0.0

        session.node.sealer = forging
        session.train(rounds=2)  # the contract's checks pass: it cannot compare tensors
        assert sealer.contract.head()[0] == 2
    result = bmoe("audit", run_dir)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "block 2: transaction" in result.stderr and "(acceptance)" in result.stderr, result.stderr
    assert "differ from the groups the objects give" in result.stderr, result.stderr
