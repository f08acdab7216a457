"""No quorum is not proof: when no group of answers meets the rule, nobody is accused of dissent or slashed,
the decision records the groups as evidence, withholding stays a record, and a deployment whose tasks keep
failing to reach quorum stops with a named stall (``--stall-after``) instead of sealing silence.

Four ways to lose quorum, each with stake on: two colluders among four edges (a tie), two colluders beside
a crashed honest edge among five, an honest fleet split 2-2 by a tolerance bound too tight, and the tie
under sampled assignment (the split sample escalated to all M first)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import ClassVar

import pytest

from bmoe.cli import main
from bmoe.data import Dataset
from bmoe.edge.behaviour import AttackContext, EdgeBehaviour
from bmoe.explorer.pages import chain as chain_pages
from bmoe.explorer.pages.view import View
from bmoe.explorer.snapshot import Explorer
from bmoe.explorer.source import RunSource
from bmoe.ledger.errors import InvalidTransaction
from bmoe.ledger.node import Signer
from bmoe.ledger.state import LedgerState, TaskState, apply_block, apply_transaction, begin_block
from bmoe.protocol.quorum_watch import QuorumStalled, QuorumWatch
from bmoe.run.audit import audit_run_dir
from bmoe.run.config import RunConfig
from bmoe.run.session import Session
from bmoe.run.setup import derive_identities
from bmoe.verify.acceptance import Verdict
from tests.conftest import small_config
from tests.ledger.chain_surgery import blocks_of

ALWAYS = {"probability": 1.0}
STAKE = {"stake": 250, "slash": 100, "rounds": 3}
CASES = {
    "tie": small_config(num_edges=4, malicious_ratio=0.5, attack_params=ALWAYS, **STAKE),
    "crashed honest edge": small_config(malicious_ratio=0.4, attack_params=ALWAYS, **STAKE),
    "honest split": small_config(num_edges=4, fleet="threads1=2,f64=2", comparison="tolerance", result_bound=1e-12,
                                 update_bound=1e-12, **STAKE),
    "sampled tie": small_config(num_edges=4, malicious_ratio=0.5, attack_params=ALWAYS, assignment="sampled",
                                replicas=3, **STAKE),
}


class Crashed(EdgeBehaviour):
    """An honest edge that is down: it answers nothing (not an attack)."""

    name: ClassVar[str] = "crashed"

    def withholds(self, ctx: AttackContext) -> bool:
        return True


def run(config: RunConfig, data: Dataset, run_dir: Path) -> Session:
    session = Session(config, dataset=data, run_dir=run_dir)
    if config.malicious_ratio == 0.4:
        session.edges[0].behaviour = Crashed()  # the first edge is honest (attackers are the last ones)
    session.train()
    return session


@pytest.fixture(scope="module", params=sorted(CASES))
def lost(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
         tiny_data: Dataset) -> tuple[str, Path, list[str]]:
    """A run of each case: its directory and its honest edges."""
    run_dir = tmp_path_factory.mktemp("no-quorum") / "run"
    with run(CASES[request.param], tiny_data, run_dir) as session:
        honest = [edge.address for edge in session.edges if not edge.behaviour.malicious]
    return request.param, run_dir, honest


def replayed(run_dir: Path) -> list[LedgerState]:
    states, state = [], LedgerState()
    for block in blocks_of(run_dir / "chain.sqlite"):
        state = apply_block(state, block)
        states.append(state)
    return states


def test_every_decision_is_no_quorum_and_records_its_groups(lost: tuple[str, Path, list[str]]) -> None:
    name, run_dir, _ = lost
    decisions = [entry for block in blocks_of(run_dir / "chain.sqlite") for tx in block.transactions
                 if tx.kind == "acceptance" for entry in tx.payload["decisions"]]
    assert decisions and {entry["status"] for entry in decisions} == {"no_quorum"}
    for entry in decisions:
        assert [len(group) for group in entry["groups"]] == [2, 2]  # the evidence: two groups of two
    if name == "sampled tie":  # a split sample is escalated to every edge before it is decided
        disputes = [tx for block in blocks_of(run_dir / "chain.sqlite") for tx in block.transactions
                    if tx.kind == "dispute"]
        assert disputes


def test_nobody_is_accused_of_dissent_or_slashed_and_withholding_stays(lost: tuple[str, Path, list[str]]) -> None:
    name, run_dir, honest = lost
    final = replayed(run_dir)[-1]
    reasons = {record["reason"] for block in blocks_of(run_dir / "chain.sqlite") for tx in block.transactions
               if tx.kind == "misbehaviour" for record in tx.payload["records"]}
    assert "dissent" not in reasons
    for edge in final.edges:
        assert final.edge_records[edge].dissent == 0 and final.balances[edge].slashed == 0
    crashed = final.edge_records[honest[0]]
    assert (crashed.withheld > 0) == (name == "crashed honest edge")
    report = audit_run_dir(run_dir, ())  # raises on any record the chain and objects do not give
    assert report.state.edge_records == final.edge_records and report.state.balances == final.balances


def test_a_dissent_under_no_quorum_is_refused_by_the_state_machine(lost: tuple[str, Path, list[str]]) -> None:
    name, run_dir, _ = lost
    blocks = blocks_of(run_dir / "chain.sqlite")
    working = begin_block(replayed(run_dir)[-2])
    for tx in blocks[-1].transactions:
        apply_transaction(working, tx)
    task = next(iter(working.tasks.values()))
    expert, committed = min(task.commitments["result"].items())
    edge = min(committed)
    validator = derive_identities(CASES[name]).validator
    forged = Signer(validator, working.nonces[validator.address] + 1).sign("misbehaviour", {
        "task_id": task.task_id, "phase": "result", "edge": edge,
        "records": [{"expert": expert, "reason": "dissent", "evidence": committed[edge][0],
                     **({"distance": 0.5} if name == "honest split" else {})}]})
    with pytest.raises(InvalidTransaction, match="no group reached quorum"):
        apply_transaction(working, forged)


def test_a_run_that_keeps_failing_to_reach_quorum_stops_with_a_named_stall(tiny_data: Dataset) -> None:
    with Session(CASES["tie"].replace(rounds=6, stall_after=2), dataset=tiny_data) as session:
        with pytest.raises(QuorumStalled, match="quorum stalled: 2 tasks in a row reached no quorum") as caught:
            session.train()
        assert session.node.state.height == 2  # both tasks sealed, then the run stopped
        assert "groups of 2, 2" in str(caught.value) and "\n" not in str(caught.value)
    with Session(CASES["tie"].replace(rounds=3, stall_after=0), dataset=tiny_data) as session:
        session.train()  # 0: never stall
        assert session.quorum.streak == 3 and not session.quorum.stalled


def _task(task_id: str, reached: bool) -> TaskState:
    task = TaskState(task_id, "train", "cid", 1, 0)
    task.verdicts["result"][0] = Verdict("d" if reached else None, ("a", "b") if reached else (), (), (),
                                         {"d": 2} if reached else {"d": 1, "e": 1})
    return task


def test_the_streak_counts_tasks_in_a_row_each_block_once_and_resets_on_quorum() -> None:
    watch = QuorumWatch(stall_after=3)
    state = LedgerState(height=1, tasks={"t0": _task("t0", False)})
    watch.observe(state)
    watch.observe(state)  # the same block observed twice: counted once
    watch.observe_tasks([_task("t1", False)])
    assert watch.streak == 2 and not watch.stalled
    watch.observe_tasks([_task("t2", True)])
    assert watch.streak == 0 and watch.total == 2
    watch.observe_tasks([_task(f"t{i}", False) for i in range(3, 6)])
    assert watch.stalled and watch.to_dict()["stall"].startswith("quorum stalled: 3 tasks in a row")
    assert watch.to_dict()["last_no_quorum"] == {"task_id": "t5", "phase": "result", "expert": 0, "sizes": [1, 1],
                                                 "missing": 0}


def test_stall_after_is_not_part_of_the_config_hash() -> None:
    assert RunConfig(stall_after=3).hash() == RunConfig().hash() == RunConfig(stall_after=0).hash()


TIE_FLAGS = ["--dataset", "synthetic", "-n", "4", "-k", "2", "-m", "4", "--batch-size", "32",
             "--difficulty", "4", "--seed", "11", "--malicious-ratio", "0.5", "--attack-param", "probability=1.0",
             "--stake", "250", "--rounds", "6"]


def bmoe_main(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
              *args: str | Path) -> tuple[int, str, str]:
    """``bmoe ARGS`` through ``bmoe.cli.main`` in this process (this tree's code): exit status, stdout, stderr."""
    monkeypatch.setattr(sys, "argv", ["bmoe", *map(str, args)])
    code = 0
    try:
        main()
    except SystemExit as exit_info:
        code = int(exit_info.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def test_bmoe_train_exits_3_on_a_stall_and_records_show_no_slash(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    run_dir = tmp_path / "run"
    code, _, err = bmoe_main(monkeypatch, capsys, "train", "--run-dir", run_dir, *TIE_FLAGS, "--stall-after", "2")
    assert code == 3, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines[-1].startswith("error: quorum stalled: 2 tasks in a row reached no quorum")  # after the progress
    assert "Traceback" not in err
    code, out, _ = bmoe_main(monkeypatch, capsys, "records", run_dir, "--json")
    records = json.loads(out)
    assert code == 0 and records["height"] == 2
    assert all(row["slashed"] == 0 and row["dissent"] == 0 for row in records["edges"])
    assert bmoe_main(monkeypatch, capsys, "audit", run_dir)[0] == 0
    served = Explorer(RunSource(run_dir)).current()
    assert served.index is not None and served.report is not None
    home = str(chain_pages.home(View(served.index, served.report, RunSource(run_dir), is_cluster=False)))
    assert '<span class="bad">quorum stalled</span>: 2 tasks in a row reached no quorum' in home
    code, _, err = bmoe_main(monkeypatch, capsys, "train", "--run-dir", tmp_path / "other", *TIE_FLAGS,
                             "--stall-after", "-1")
    assert code == 2 and "stall_after" in err and not (tmp_path / "other").exists()
