"""A proposer that records groups, an accepted value or a distance the objects do not give, within
everything the ledger alone can check, seals its block under proof of work; ``bmoe audit`` and every
re-executing validator re-derive the groups from the stored answers and name what differs."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bmoe.data import Dataset
from bmoe.experiments.runs import train_run
from bmoe.ledger.chainstore import ChainStore
from bmoe.ledger.errors import InvalidBlock, LedgerError
from bmoe.ledger.state import LedgerState, TaskState, apply_block
from bmoe.protocol.reexecute import Reexecutor
from bmoe.protocol.validator import Validator
from bmoe.run.audit import audit_run_dir
from bmoe.run.session import CHAIN_FILE, STORE_DIR, Session
from bmoe.storage import DirectoryStore
from bmoe.verify.phase import Accusation, build_accusations, grouped_verdict
from tests.conftest import small_config

TAMPERED_ROUND = 1  # the second training round's block (height 2)
CONFIG = small_config(fleet="default=1,threads2=1,f64=2,chunked=1", comparison="tolerance", rounds=3,
                      malicious_ratio=0.2, attack_params={"probability": 1.0})
Decided = tuple[Any, Any, Any, list[Accusation]]
Tamper = Callable[[Validator, LedgerState, TaskState, int, Decided], Decided]


def split_an_honest_edge_off(validator: Validator, state: LedgerState, task: TaskState, expert: int,
                             decided: Decided) -> Decided:
    """Frame the honest group's last edge: record it as a group of its own, accused of dissent."""
    decision, _, output, _ = decided
    first, *rest = decision.groups
    groups = [first[:-1], *rest, first[-1:]]
    committed = task.commitments["result"][expert]
    verdict = grouped_verdict(state.rule, committed, state.assigned_edges(expert, task), groups)
    changed = dataclasses.replace(decision, groups=tuple(groups))
    return changed, verdict, output, build_accusations(changed, verdict, committed,
                                                       {edge: 0.5 for edge in committed})


def accept_one_members_answer(validator: Validator, state: LedgerState, task: TaskState, expert: int,
                              decided: Decided) -> Decided:
    """Steer the accepted value: one member's committed answer instead of the group's median."""
    decision, verdict, output, accusations = decided
    digest, cid = task.commitments["result"][expert][decision.groups[0][-1]]
    return dataclasses.replace(decision, digest=digest, cid=cid), verdict, output, accusations


def understate_a_distance(validator: Validator, state: LedgerState, task: TaskState, expert: int,
                          decided: Decided) -> Decided:
    decision, verdict, output, accusations = decided
    return decision, verdict, output, [dataclasses.replace(a, distance=0.0) if a.reason == "dissent" else a
                                       for a in accusations]


def run_with(tmp_path: Path, data: Dataset, tamper: Tamper, monkeypatch: pytest.MonkeyPatch) -> Path:
    original = Validator._decide_grouped
    done: list[bool] = []

    def dishonest(self: Validator, state: LedgerState, task: TaskState, phase: str, expert: int,
                  n_rows: int) -> Decided:
        decided = original(self, state, task, phase, expert, n_rows)
        if task.round == TAMPERED_ROUND and phase == "result" and not done and len(decided[0].groups) > 1:
            done.append(True)
            return tamper(self, state, task, expert, decided)
        return decided

    monkeypatch.setattr(Validator, "_decide_grouped", dishonest)
    run_dir = tmp_path / "run"
    with Session(CONFIG, dataset=data, run_dir=run_dir) as session:
        train_run(CONFIG, run_dir, session=session)
    assert done, "the tampering proposer found no decision to change"
    return run_dir


CASES = [(split_an_honest_edge_off, "differ from the groups the objects give [4: "),
         (accept_one_members_answer, "is not the first group's median"),
         (understate_a_distance, "recorded distance of edge")]


@pytest.mark.parametrize(("tamper", "needle"), CASES, ids=[t.__name__ for t, _ in CASES])
def test_audit_and_reexecution_name_a_recorded_grouping_the_objects_do_not_give(
        tmp_path: Path, tiny_data: Dataset, monkeypatch: pytest.MonkeyPatch, tamper: Tamper, needle: str) -> None:
    run_dir = run_with(tmp_path, tiny_data, tamper, monkeypatch)
    monkeypatch.undo()
    with pytest.raises(LedgerError) as caught:
        audit_run_dir(run_dir, ())
    assert f"block {TAMPERED_ROUND + 1}: transaction" in str(caught.value) and needle in str(caught.value)

    chain = ChainStore(run_dir / CHAIN_FILE, readonly=True)  # a validator replaying the chain block by block
    blocks = list(chain.iter_blocks())
    chain.close()
    checker = Reexecutor(DirectoryStore(run_dir / STORE_DIR, create=False), tiny_data.input_dim,
                         tiny_data.num_classes)
    state = apply_block(LedgerState(), blocks[0])
    for block in blocks[1:TAMPERED_ROUND + 1]:
        state = checker.check(state, block)
    with pytest.raises(InvalidBlock) as refused:
        checker.check(state, blocks[TAMPERED_ROUND + 1])
    assert needle in str(refused.value)


def test_an_honest_tolerance_run_audits_and_reexecutes_clean(tmp_path: Path, tiny_data: Dataset) -> None:
    run_dir = tmp_path / "run"
    with Session(CONFIG, dataset=tiny_data, run_dir=run_dir) as session:
        train_run(CONFIG, run_dir, session=session)
        head = session.head_hash
    report = audit_run_dir(run_dir, ())
    assert report.head_hash == head and report.evidence_required > 0
