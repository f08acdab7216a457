"""Disputes under ``--assignment sampled``: a split or incomplete sample is escalated, in the same round,
to every edge and decided by the acceptance rule among all M answers; the ledger refuses a decision on
a split sample that was not disputed, and a dispute of a unanimous one."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest

from bmoe.data import Dataset
from bmoe.edge.behaviour import AttackContext, EdgeBehaviour, Weights
from bmoe.ledger.errors import InvalidTransaction
from bmoe.ledger.state import LedgerState, TaskState, apply_block
from bmoe.ledger.transactions import Transaction
from bmoe.protocol.grouped_check import GroupedDecisions
from bmoe.protocol.validator import Validator
from bmoe.run.config import RunConfig
from bmoe.run.session import Session
from tests.conftest import small_config

# M = 5 edges, r = 3, the last two edges collude on every expert of every round: a sample holding both
# has a colluding majority of its own, which the dispute must outvote among all five. A sample misses both
# attackers with probability 1/10; the samples are drawn from the chain, whose bytes differ by processor,
# so 20 rounds (about 80 samples) make a run with no clean sample a 0.9^80 ~ 2e-4 event on any machine.
COLLUDING = small_config(assignment="sampled", replicas=3, malicious_ratio=0.4, attack="gaussian",
                         attack_params={"probability": 1.0}, collude=True, rounds=20)


def replayed(session: Session) -> Iterator[tuple[LedgerState, TaskState]]:
    assert session.node.chain is not None
    state = LedgerState()
    for block in session.node.chain.iter_blocks():
        state = apply_block(state, block)
        for task in state.tasks.values():
            yield state, task


def dispute_txs(session: Session) -> list[Transaction]:
    assert session.node.chain is not None
    return [tx for block in session.node.chain.iter_blocks() for tx in block.transactions if tx.kind == "dispute"]


@pytest.fixture(scope="module")
def colluding(tiny_data: Dataset, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Session]:
    """The 20-round colluding run, trained once for the tests that only read it."""
    with Session(COLLUDING, dataset=tiny_data, run_dir=tmp_path_factory.mktemp("colluding") / "run") as session:
        session.train()
        yield session


def test_a_colluding_sample_is_escalated_to_every_edge_and_outvoted(colluding: Session) -> None:
    session = colluding
    attackers = {e.address for e in session.edges if e.behaviour.malicious}
    assert len(attackers) == 2
    escalated = clean = 0
    for state, task in replayed(session):
        for expert in task.activated():
            sample = set(state.sampled_edges(expert, task))
            verdict = task.verdicts["result"][expert]
            assert task.accepted_cids["result"][expert] is not None  # never lost to the colluders
            assert not attackers & set(verdict.supporters)
            if sample & attackers:
                escalated += 1
                assert task.escalated[expert] == "result"
                assert state.assigned_edges(expert, task) == state.edges
                assert set(task.commitments["result"][expert]) == set(state.edges)
                assert {(a, expert, "result") for a in attackers} <= task.accusations
                assert {(a, expert, "update") for a in attackers} <= task.accusations  # escalated for its update
            else:
                clean += 1
                assert expert not in task.escalated
                assert set(task.commitments["result"][expert]) == sample
            assert not {edge for edge, _, _ in task.accusations} - attackers  # no honest edge is accused
    assert escalated and clean
    assert len(dispute_txs(session)) >= 1
    records = session.node.state.edge_records
    assert all(records[a].dissent > 0 for a in attackers)
    assert all(records[e].dissent == records[e].withheld == 0 for e in records if e not in attackers)


def test_without_the_dispute_a_colluding_pair_would_win_its_sample(colluding: Session) -> None:
    """The claim the dispute exists for: in a sample of 3 holding both colluders, the majority of the
    sample alone is theirs (the rule over the sample accepts their digest)."""
    from bmoe.verify.phase import verdict_of

    session = colluding
    attackers = {e.address for e in session.edges if e.behaviour.malicious}
    won = 0
    for state, task in replayed(session):
        for expert in task.activated():
            sample = state.sampled_edges(expert, task)
            if attackers <= set(sample):
                alone = verdict_of(state.rule, task.commitments["result"][expert], sample)
                assert set(alone.supporters) == attackers
                won += 1
    assert won > 0, "no sample held both colluders: the scenario does not test the dispute"


def test_the_ledger_refuses_an_undisputed_decision_on_a_split_sample(
        tiny_data: Dataset, monkeypatch: pytest.MonkeyPatch) -> None:
    """A validator that skips the dispute: its acceptance over a split sample is refused. (With two
    colluders among five edges and K = 2 samples of three covering all five, every round splits one.)"""
    monkeypatch.setattr(Validator, "dispute", lambda self, task_id, phase, experts: None)
    with Session(COLLUDING.replace(rounds=1), dataset=tiny_data) as session:
        with pytest.raises(InvalidTransaction, match="the sample must be disputed"):
            session.train()
        assert session.node.state.height == 0  # nothing sealed past the genesis, nothing pending
        assert not session.node.pending


def _forge_every_dispute(self: Validator, task_id: str, phase: str, experts: list[int]) -> Transaction:
    return self.signer.sign("dispute", {"task_id": task_id, "phase": phase,
                                        "disputes": [{"expert": e} for e in sorted(experts)]})


@pytest.mark.parametrize(("config", "needle"), [
    (small_config(assignment="sampled", replicas=3, rounds=1), "its sample is unanimous: nothing to dispute"),
    (small_config(rounds=1), "assignment all has no disputes"),
    (small_config(assignment="sampled", replicas=5, rounds=1), "its sample is already every edge"),
])
def test_a_dispute_without_a_split_is_refused(tiny_data: Dataset, monkeypatch: pytest.MonkeyPatch,
                                              config: RunConfig, needle: str) -> None:
    monkeypatch.setattr(Validator, "dispute", _forge_every_dispute)
    with Session(config, dataset=tiny_data) as session:
        with pytest.raises(InvalidTransaction, match=needle):
            session.train()
        assert session.node.state.height == 0


def test_a_withholding_sampled_edge_is_escalated_and_recorded(tiny_data: Dataset, tmp_path: Path) -> None:
    config = small_config(assignment="sampled", replicas=3, malicious_ratio=0.2, attack="withhold",
                          attack_params={"probability": 1.0}, rounds=4)
    with Session(config, dataset=tiny_data, run_dir=tmp_path / "run") as session:
        session.train()
        withholder = next(e.address for e in session.edges if e.behaviour.malicious)
        seen = 0
        for state, task in replayed(session):
            for expert in task.activated():
                if withholder in state.sampled_edges(expert, task):
                    seen += 1
                    assert expert in task.escalated
                    assert (withholder, expert, "result") in task.accusations
                    assert task.accepted_cids["result"][expert] is not None
                else:
                    assert expert not in task.escalated
        assert seen > 0
        assert session.node.state.edge_records[withholder].withheld > 0


class _UpdateLiar(EdgeBehaviour):
    """Honest results, doubled update steps: the lie shows only in step 5."""

    malicious = True

    def tamper_update(self, ctx: AttackContext, base: Weights, updated: Weights) -> Weights | None:
        return {name: base[name] + 2 * (updated[name] - base[name]) for name in sorted(updated)}


def test_an_update_dispute_brings_edges_that_never_ran_the_forward_pass(tiny_data: Dataset, tmp_path: Path) -> None:
    config = small_config(assignment="sampled", replicas=3, rounds=3)
    with Session(config, dataset=tiny_data, run_dir=tmp_path / "run") as session:
        liar = session.edges[-1]
        liar.behaviour = _UpdateLiar()
        session.participants.gateway.check_honest = False  # type: ignore[attr-defined]
        session.train()
        seen = 0
        for state, task in replayed(session):
            for expert in task.activated():
                sampled = liar.address in state.sampled_edges(expert, task)
                assert (expert in task.escalated) == sampled
                if sampled:
                    seen += 1
                    assert task.escalated[expert] == "update"  # its results agreed
                    assert set(task.commitments["result"][expert]) == set(state.sampled_edges(expert, task))
                    assert set(task.commitments["update"][expert]) == set(state.edges)
                    assert (liar.address, expert, "update") in task.accusations
                    assert liar.address not in task.verdicts["update"][expert].supporters
        assert seen > 0
        assert session.node.state.edge_records[liar.address].dissent == seen


@pytest.mark.parametrize("comparison", ["tolerance", "integer"])
def test_disputes_hold_under_every_comparison(tiny_data: Dataset, tmp_path: Path, comparison: str) -> None:
    fleet = {"tolerance": {"fleet": "threads1=3,f64=2"}, "integer": {"expert": "mlp-int"}}[comparison]
    config = COLLUDING.replace(comparison=comparison, rounds=3, **fleet)
    with Session(config, dataset=tiny_data, run_dir=tmp_path / "run") as session:
        session.train()
        attackers = {e.address for e in session.edges if e.behaviour.malicious}
        disputes = dispute_txs(session)
        assert disputes
        if comparison == "tolerance":
            assert all("groups" in entry for tx in disputes for entry in tx.payload["disputes"])
        for _, task in replayed(session):
            for expert in task.activated():
                assert not attackers & set(task.verdicts["result"][expert].supporters)
    from bmoe.run.audit import audit_run_dir

    report = audit_run_dir(tmp_path / "run", ())  # raises when a block does not re-verify
    assert report.height == config.rounds and report.evidence_missing == 0


def test_a_dispute_recording_groups_the_objects_do_not_give_is_caught(tiny_data: Dataset, tmp_path: Path) -> None:
    """Under tolerance the dispute's groups are re-derived from the sample's answers (the re-executor and
    audit); recording the split sample as one group is named."""
    config = COLLUDING.replace(comparison="tolerance", fleet="threads1=3,f64=2", rounds=2)
    with Session(config, dataset=tiny_data, run_dir=tmp_path / "run") as session:
        session.train()
        assert session.node.chain is not None
        state = LedgerState()
        for block in session.node.chain.iter_blocks():
            state = apply_block(state, block)
            disputes = [tx for tx in block.transactions if tx.kind == "dispute"]
            if disputes:
                break
        assert disputes, "no dispute was recorded"
        checker = GroupedDecisions(session.store)
        assert checker.transaction_error(state, disputes[0]) is None
        entry = disputes[0].payload["disputes"][0]
        merged = [sorted(edge for group in entry["groups"] for edge in group)]
        forged = dataclasses.replace(disputes[0], payload={**disputes[0].payload, "disputes": [
            {**entry, "groups": merged}]})
        reason = checker.transaction_error(state, forged)
        assert reason is not None and "differ from the groups the objects give" in reason


def test_pbft_replicas_re_execute_every_dispute(tiny_data: Dataset) -> None:
    with Session(COLLUDING.replace(consensus="pbft", validators=4, rounds=3), dataset=tiny_data) as session:
        session.train()
        assert session.node.state.height == 3 and session.pbft is not None and session.pbft.view_changes == 0
        assert any(task.escalated for task in session.node.state.tasks.values())
