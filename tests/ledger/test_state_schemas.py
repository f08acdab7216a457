"""Every transaction kind has an exact schema: an honest transaction mutated in any field (an unknown
key, a missing key, a huge, non-finite or wrong-typed value, here or in a list entry) is refused by
the state machine with a named reason, and a refused transaction changes nothing."""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bmoe.ledger.errors import InvalidTransaction
from bmoe.ledger.schemas import MAX_PAYLOAD_BYTES, Limits, payload_error
from bmoe.ledger.state import LedgerState, apply_block, apply_transaction, begin_block, state_root
from bmoe.ledger.transactions import TX_KINDS, Transaction, sign_transaction
from bmoe.run.payments import PaymentTerms
from bmoe.run.session import Session
from tests.conftest import small_config
from tests.generation.helpers import generate, liar, model
from tests.generation.helpers import session as generation_session
from tests.generation.placement_helpers import placement_transactions

HUGE = "x" * (MAX_PAYLOAD_BYTES + 1)
# Wrong for every field of every kind (no field is nullable at the top level, none takes -1 or "").
BAD_VALUES: dict[str, object] = {
    "none": None, "huge": HUGE, "nan": float("nan"), "inf": float("inf"), "-inf": float("-inf"),
    "bool": True, "negative": -1, "empty": "", "object": {"nested": [1]}, "long list": [0] * 5000,
    "beyond float": 10**400,
}
# Wrong for every field of a list entry (entries' digest, cid and evidence may be null).
BAD_ENTRY_VALUES = {name: value for name, value in BAD_VALUES.items() if name != "none"}


@pytest.fixture(scope="module")
def honest(tiny_data, tmp_path_factory) -> dict[str, tuple[LedgerState, Transaction]]:  # type: ignore[no-untyped-def]
    """The first sealed transaction of each kind, with the state just before it."""
    run_dir: Path = tmp_path_factory.mktemp("run")
    # sampled, r = 3 of 5 with two attackers: every round splits a sample, so it has a dispute too
    config = small_config(malicious_ratio=0.4, attack_params={"probability": 1.0}, assignment="sampled", replicas=3)
    with Session(config, dataset=tiny_data, run_dir=run_dir) as session:
        session.train(rounds=1)
        assert session.node.chain is not None
        blocks = list(session.node.chain.iter_blocks())
    found: dict[str, tuple[LedgerState, Transaction]] = {"genesis": (LedgerState(), blocks[0].transactions[0])}
    working = begin_block(apply_block(LedgerState(), blocks[0]))
    for tx in blocks[1].transactions:
        found.setdefault(tx.kind, (copy.deepcopy(working), tx))
        apply_transaction(working, tx)
    found.update(_disputed_chunk(tmp_path_factory.mktemp("generation")))
    found["quality_verdict"] = _quality_verdict()
    found.update(placement_transactions(tmp_path_factory.mktemp("placement")))
    assert set(found) == set(TX_KINDS)
    return found


def _disputed_chunk(run_dir: Path) -> dict[str, tuple[LedgerState, Transaction]]:
    """A paid verified generation's first chunk with a dispute (edge 4 lied), its settlement and a deposit, each
    with the state before it."""
    session = generation_session(model(), {4: liar(1, 2)}, run_dir=run_dir,
                                 payments=PaymentTerms(deposits={"anyone": 10**6}))
    generate(session, payer="anyone")
    assert session.node.chain is not None
    state = LedgerState()
    for block in session.node.chain.iter_blocks():
        tx = block.transactions[0]
        if tx.kind == "generation_chunk" and tx.payload["disputes"] and tx.payload["records_against"]:
            working = begin_block(state)
            found = {"generation_chunk": (copy.deepcopy(working), tx)}
            apply_transaction(working, tx)
            found["settlement"] = (working, block.transactions[1])
            deposit = sign_transaction(session.validator, "deposit", {"account": "anyone", "amount": 5},
                                       state.next_nonce(session.validator.address))
            return {**found, "deposit": (begin_block(state), deposit)}
        state = apply_block(state, block)
    raise AssertionError("no chunk with a dispute")


def _quality_verdict() -> tuple[LedgerState, Transaction]:
    """A quality verdict on a verified generation's first response (two validators disagreeing), and the state
    before it (tests/generation/test_quality_ledger.py tests its rules)."""
    from bmoe.lm.quality.judge import QualityJudge, QualityValidator
    from bmoe.lm.quality.scorers import FixedReport
    from bmoe.run.quality import verdict_payload
    from tests.generation.helpers import receipt

    session = generation_session(model())
    generate(session)
    judge = QualityJudge([QualityValidator("v0", FixedReport(0.4)), QualityValidator("v1", FixedReport(0.9))],
                         threshold=0.5)
    payload = verdict_payload(judge.score("a prompt", "an answer"), {**receipt(session, 0), "id": "cmpl-0"})
    return begin_block(session.node.state), session.signer.sign("quality_verdict", payload)


def mutations(payload: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(what changed, the changed payload) for every field and every entry field of the first list entry."""
    yield "unknown key", {**payload, "extra": "x" * 1000}
    for key, value in payload.items():
        yield f"{key} dropped", {k: v for k, v in payload.items() if k != key}
        for name, bad in BAD_VALUES.items():
            yield f"{key} {name}", {**payload, key: bad}
        if isinstance(value, list) and value and isinstance(value[0], dict):
            entry = value[0]
            yield f"{key}[0] unknown key", {**payload, key: [{**entry, "extra": 1}, *value[1:]]}
            for field in entry:
                yield f"{key}[0].{field} dropped", {**payload, key: [
                    {k: v for k, v in entry.items() if k != field}, *value[1:]]}
                for name, bad in BAD_ENTRY_VALUES.items():
                    yield f"{key}[0].{field} {name}", {**payload, key: [{**entry, field: bad}, *value[1:]]}


def refused(state: LedgerState, tx: Transaction) -> str:
    before, tasks = state_root(state), repr(state.tasks)
    with pytest.raises(InvalidTransaction) as caught:
        apply_transaction(state, tx)
    assert state_root(state) == before and repr(state.tasks) == tasks
    return caught.value.reason


@pytest.mark.parametrize("kind", TX_KINDS)
def test_the_honest_transaction_of_every_kind_passes_its_schema(honest, kind: str) -> None:  # type: ignore[no-untyped-def]
    state, tx = honest[kind]
    assert payload_error(kind, tx.payload, Limits()) is None
    apply_transaction(copy.deepcopy(state), tx)


@pytest.mark.parametrize("kind", TX_KINDS)
def test_every_mutated_field_of_every_kind_is_refused_by_name(honest, kind: str) -> None:  # type: ignore[no-untyped-def]
    state, tx = honest[kind]
    checked = 0
    for what, payload in mutations(dict(tx.payload)):
        reason = refused(state, dataclasses.replace(tx, payload=payload))
        assert reason.startswith(f"{kind}: schema: "), (what, reason)
        checked += 1
    assert checked > 10 * len(tx.payload)  # the fields the honest payload has (a genesis's optional ones are absent)


def test_a_megabyte_attached_to_a_commitment_is_never_sealed(honest) -> None:  # type: ignore[no-untyped-def]
    state, tx = honest["commitment"]
    entry = tx.payload["results"][0]
    for payload in ({**tx.payload, "note": "x" * (1 << 20)},
                    {**tx.payload, "results": [{**entry, "cid": "b" + "a" * (1 << 20)}]},
                    {**tx.payload, "task_id": "t" * (1 << 20)}):
        reason = refused(state, dataclasses.replace(tx, payload=payload))
        assert "cap" in reason or "unknown" in reason


def test_lists_are_bounded_by_the_runs_number_of_experts(honest) -> None:  # type: ignore[no-untyped-def]
    state, tx = honest["commitment"]
    entry = tx.payload["results"][0]
    n = len(state.expert_cids)
    too_many = [{**entry, "expert": e % n} for e in range(n + 1)]
    assert "items" in refused(state, dataclasses.replace(tx, payload={**tx.payload, "results": too_many}))
    out_of_range = [{**entry, "expert": n}]
    assert "expert" in refused(state, dataclasses.replace(tx, payload={**tx.payload, "results": out_of_range}))


def test_the_loss_must_be_finite_and_not_negative(honest) -> None:  # type: ignore[no-untyped-def]
    state, tx = honest["gate_update"]
    for loss in (float("nan"), float("inf"), -0.5, "0.3", None, 10**400):
        assert "schema" in refused(state, dataclasses.replace(tx, payload={**tx.payload, "loss": loss}))


def test_a_genesis_whose_expert_count_disagrees_with_its_cids_is_refused(honest) -> None:  # type: ignore[no-untyped-def]
    state, tx = honest["genesis"]
    payload = {**tx.payload, "num_experts": len(tx.payload["expert_cids"]) + 1}
    assert "num_experts" in refused(state, dataclasses.replace(tx, payload=payload))
