"""``--assignment adaptive``: the sample shrinks from r to ``trusted_replicas`` (never below 2) where the
edges drawn have ``trust_after`` accepted answers in a row; newcomers and accused edges are always in a
full sample; a sleeper (honest, then lying) gains only while it is trusted, and loses trust when caught."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bmoe.data import Dataset
from bmoe.ledger.state import LedgerState, TaskState, apply_block
from bmoe.run.audit import audit_run_dir
from bmoe.run.config import ConfigError
from bmoe.run.session import Session
from bmoe.verify.assignment import Adaptive, AssignmentError
from tests.conftest import small_config

WAKE = 8
# M = 6, two colluding sleepers (honest for 8 rounds, then lying on everything), r = 3, trusted samples of 2
# once an edge has 4 accepted answers in a row.
SLEEPERS = small_config(num_edges=6, assignment="adaptive", replicas=3, trusted_replicas=2, trust_after=4,
                        malicious_ratio=0.34, attack="sleeper", attack_params={"probability": 1.0, "wake_round": WAKE},
                        rounds=24)


def replay(run_dir: Path) -> Iterator[tuple[LedgerState, LedgerState, TaskState]]:
    """(the state before the block, after it, each task of it)."""
    from tests.ledger.chain_surgery import blocks_of

    state = LedgerState()
    for block in blocks_of(run_dir / "chain.sqlite"):
        before, state = state, apply_block(state, block)
        for task in state.tasks.values():
            yield before, state, task


@pytest.fixture(scope="module")
def sleeper_run(tmp_path_factory: pytest.TempPathFactory, tiny_data: Dataset) -> tuple[Path, frozenset[str]]:
    run_dir = tmp_path_factory.mktemp("adaptive") / "run"
    with Session(SLEEPERS, dataset=tiny_data, run_dir=run_dir) as session:
        session.train()
        sleepers = frozenset(e.address for e in session.edges if e.behaviour.malicious)
    return run_dir, sleepers


def test_untrusted_edges_are_always_in_a_full_sample_and_no_sample_is_below_two(
        sleeper_run: tuple[Path, frozenset[str]]) -> None:
    run_dir, _ = sleeper_run
    sizes: list[int] = []
    for before, state, task in replay(run_dir):
        assert task.trusted == {e for e, streak in before.streaks.items() if streak >= 4}
        for expert in task.activated():
            sample = state.sampled_edges(expert, task)
            sizes.append(len(sample))
            assert len(sample) >= 2
            if not set(sample) <= task.trusted:
                assert len(sample) == 3, "a newcomer or an accused edge sat in a shrunk sample"
    assert sizes[:4] == [3, 3, 3, 3]  # the first round: nobody is trusted yet
    assert 2 in sizes and 3 in sizes


def test_a_sleeper_gains_only_while_trusted_and_loses_its_trust_when_caught(
        sleeper_run: tuple[Path, frozenset[str]]) -> None:
    run_dir, sleepers = sleeper_run
    escapes = caught = 0
    for _before, state, task in replay(run_dir):
        for expert in task.activated():
            sample = set(state.sampled_edges(expert, task))
            verdict = task.verdicts["result"][expert]
            lied = task.round >= WAKE  # awake, the sleepers lie on every expert (probability 1)
            if lied and verdict.supporters and set(verdict.supporters) <= sleepers:  # a manipulated result accepted
                escapes += 1
                assert sample <= sleepers and sample <= task.trusted and len(sample) == 2
        for edge in sleepers:
            if any(a[0] == edge for a in task.accusations):
                caught += 1
                assert state.streaks[edge] == 0
    assert caught > 0
    # Two colluders can fill a sample of 2 (C(2,2)/C(6,2) = 1/15 of trusted draws), never one of 3: what
    # trust buys a sleeper is bounded by the shrunk sample, and only until it is first caught.
    final = list(replay(run_dir))[-1][1]
    assert all(final.streaks[edge] < 4 for edge in sleepers)
    assert escapes <= 2


def test_without_trust_the_same_sleepers_never_get_a_result_accepted(tiny_data: Dataset, tmp_path: Path) -> None:
    config = SLEEPERS.replace(assignment="sampled")
    with Session(config, dataset=tiny_data, run_dir=tmp_path / "run") as session:
        session.train()
        sleepers = {e.address for e in session.edges if e.behaviour.malicious}
    for _, _, task in replay(tmp_path / "run"):
        for expert in task.activated():
            supporters = set(task.verdicts["result"][expert].supporters)
            assert task.round < WAKE or not (supporters and supporters <= sleepers)


def test_an_adaptive_run_audits_and_replays_to_the_same_head(sleeper_run: tuple[Path, frozenset[str]],
                                                              tiny_data: Dataset) -> None:
    run_dir, _ = sleeper_run
    report = audit_run_dir(run_dir, ())
    assert report.height == SLEEPERS.rounds
    with Session(SLEEPERS, dataset=tiny_data) as session:
        session.train()
        assert session.head_hash == report.head_hash


def test_pbft_replicas_follow_the_trust_the_chain_derives(tiny_data: Dataset) -> None:
    config = SLEEPERS.replace(consensus="pbft", validators=4, rounds=10)
    with Session(config, dataset=tiny_data) as session:
        session.train()
        assert session.node.state.height == 10 and session.pbft is not None and session.pbft.view_changes == 0


@pytest.mark.parametrize(("changes", "needle"), [
    ({"trusted_replicas": 1}, "trusted_replicas"),
    ({"trusted_replicas": 4}, "trusted replicas (4) must be at most the replicas r = 3"),
    ({"trust_after": 0}, "trust_after"),
    ({"framework": "traditional", "num_edges": 10}, "assignment adaptive applies to B-MoE"),
    ({"assignment": "reputation"}, "assignment must be one of all, sampled, adaptive"),
])
def test_bad_adaptive_settings_are_one_config_error(changes: dict[str, object], needle: str) -> None:
    with pytest.raises(ConfigError, match=needle.replace("(", r"\(").replace(")", r"\)")):
        SLEEPERS.replace(**changes)


def test_a_recorded_adaptive_policy_never_lets_an_edge_alone() -> None:
    with pytest.raises(AssignmentError, match=r"trusted replicas must be in \[2, replicas = 3\]"):
        Adaptive(replicas=3, trusted_replicas=1)
    policy = Adaptive(replicas=3, trusted_replicas=2, trust_after=5)
    edges = tuple(f"{i:064x}" for i in range(6))
    everyone = frozenset(edges)
    samples = policy.sizes(edges, (0, 1, 2), b"seed", everyone)
    assert [len(s) for s in samples.values()] == [2, 2, 2]
    assert len(set().union(*samples.values())) == 6  # consecutive runs: the load spread over every edge
    assert [len(s) for s in policy.sizes(edges, (0, 1, 2), b"seed", frozenset()).values()] == [3, 3, 3]
