"""Validators re-execute: an honest block re-executes to exactly what it claims; a proposer that
changed anything (gate output, accepted results, aggregation, loss, gate update, state root) is caught,
and the first differing item is named."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from bmoe.ledger.blocks import Block
from bmoe.ledger.errors import InvalidBlock
from bmoe.ledger.state import LedgerState, apply_block
from bmoe.ledger.transactions import sign_transaction
from bmoe.protocol.reexecute import Reexecutor
from bmoe.run.session import Session
from bmoe.storage import cid_of
from tests.conftest import small_config


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory, tiny_data):  # type: ignore[no-untyped-def]
    run_dir = tmp_path_factory.mktemp("reexec") / "run"
    session = Session(small_config(malicious_ratio=0.4, attack_params={"probability": 0.5}), dataset=tiny_data,
                      run_dir=run_dir)
    session.train(rounds=3)
    session.infer(tiny_data.x_test[:32])
    blocks = list(session.node.chain.iter_blocks())  # type: ignore[union-attr]
    return session, blocks


def state_before(blocks: list[Block], height: int) -> LedgerState:
    state = LedgerState()
    for block in blocks[:height]:
        state = apply_block(state, block)
    return state


def reexecutor(session: Session) -> Reexecutor:
    return Reexecutor(session.store, session.dataset.input_dim, session.dataset.num_classes)


def test_honest_blocks_reexecute_to_the_same_state(chain) -> None:  # type: ignore[no-untyped-def]
    session, blocks = chain
    checker = reexecutor(session)
    state = state_before(blocks, 1)
    for block in blocks[1:]:
        state = checker.check(state, block)
    assert state.expert_cids == session.node.state.expert_cids
    assert state.gate_cid == session.node.state.gate_cid


def tamper(session: Session, block: Block, kind: str, change) -> Block:  # type: ignore[no-untyped-def]
    """The block with the first ``kind`` transaction's payload changed and re-signed by the validator."""
    txs = list(block.transactions)
    index = next(i for i, tx in enumerate(txs) if tx.kind == kind)
    tx = txs[index]
    payload = change(dict(tx.payload))
    txs[index] = sign_transaction(session.ids.validator, tx.kind, payload, tx.nonce)
    return dataclasses.replace(block, transactions=tuple(txs))


def other_cid(_: object) -> str:
    return cid_of(b"something else")


@pytest.mark.parametrize(("kind", "change", "named"), [
    ("activation", lambda p: {**p, "activation_cid": other_cid(p)}, "activation_cid differs"),
    ("acceptance", lambda p: {**p, "output_cid": other_cid(p)}, "output_cid differs"),
    ("gate_update", lambda p: {**p, "loss": p["loss"] * 0.5}, "loss differs"),
    ("gate_update", lambda p: {**p, "gate_cid": other_cid(p)}, "gate_cid differs"),
    ("gate_update", lambda p: {**p, "gradient_cids": {k: other_cid(k) for k in p["gradient_cids"]}},
     "gradient_cids differs"),
    ("acceptance", lambda p: {**p, "decisions": [{**p["decisions"][0], "status": "no_quorum", "digest": None,
                                                  "cid": None}, *p["decisions"][1:]]}, "rule majority decides"),
    ("acceptance", lambda p: {**p, "decisions": [{**p["decisions"][0], "status": "malformed", "cid": None},
                                                 *p["decisions"][1:]]}, "a valid result is marked malformed"),
    ("update_acceptance", lambda p: {**p, "decisions": [{**p["decisions"][0], "status": "malformed", "cid": None},
                                                        *p["decisions"][1:]]}, "a valid update is marked malformed"),
])
def test_a_tampering_proposer_is_caught_and_named(chain, kind, change, named) -> None:  # type: ignore[no-untyped-def]
    session, blocks = chain
    height = 2
    bad = tamper(session, blocks[height], kind, change)
    with pytest.raises(InvalidBlock, match=named) as caught:
        reexecutor(session).check(state_before(blocks, height), bad)
    assert f"block {height}" in str(caught.value) and kind in str(caught.value)


def test_a_wrong_state_root_is_caught(chain) -> None:  # type: ignore[no-untyped-def]
    session, blocks = chain
    header = dataclasses.replace(blocks[2].header, state_root="ab" * 32)
    with pytest.raises(InvalidBlock, match="state root"):
        reexecutor(session).check(state_before(blocks, 2), dataclasses.replace(blocks[2], header=header))


def test_inference_blocks_reexecute_too(chain, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    session, blocks = chain
    last = blocks[-1]
    assert any(tx.kind == "task" and tx.payload["kind"] == "infer" for tx in last.transactions)
    bad = tamper(session, last, "acceptance", lambda p: {**p, "output_cid": other_cid(p)})
    with pytest.raises(InvalidBlock, match="output_cid"):
        reexecutor(session).check(state_before(blocks, len(blocks) - 1), bad)
