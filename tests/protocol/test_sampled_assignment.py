"""``--assignment sampled``: r of the M edges per (task, expert), drawn from the previous block's hash
and the activation CID, so the ledger, every replica and audit recompute the sample; load spread
evenly; a commitment from outside the sample refused; the real sampler meets the error bound."""

from __future__ import annotations

import hashlib
import math
from collections import Counter
from pathlib import Path

import pytest

from bmoe.data import Dataset
from bmoe.ledger.errors import InvalidTransaction
from bmoe.ledger.state import LedgerState, apply_block
from bmoe.run.config import ConfigError, RunConfig
from bmoe.run.session import Session
from bmoe.verify.assignment import Sampled, make_assignment, task_seed
from bmoe.verify.sampling_bound import escape_probability
from tests.conftest import small_config

SAMPLED = small_config(assignment="sampled", replicas=2, rounds=6)


def test_every_activated_expert_is_computed_by_r_edges_with_the_load_spread_evenly(
        tiny_data: Dataset, tmp_path: Path) -> None:
    with Session(SAMPLED, dataset=tiny_data, run_dir=tmp_path / "run") as session:
        session.train()
        assert session.node.chain is not None
        blocks = list(session.node.chain.iter_blocks())
    assert len(blocks) == SAMPLED.rounds + 1
    state = LedgerState()
    samples = []
    for block in blocks:
        state = apply_block(state, block)
        for task in state.tasks.values():
            load: Counter[str] = Counter()
            for expert in task.activated():
                assigned = state.assigned_edges(expert, task)
                assert len(assigned) == 2
                assert set(task.commitments["result"][expert]) <= set(assigned)
                load.update(assigned)
                samples.append(assigned)
            assert max(load.values()) - min(load.get(e, 0) for e in state.edges) <= 1, load
    assert len(set(samples)) > 1  # the sample changes from task to task
    assert state.genesis is not None and state.genesis["assignment"] == {"name": "sampled", "params": {"replicas": 2}}


def test_a_commitment_from_an_edge_outside_the_sample_is_refused(tiny_data: Dataset) -> None:
    session = Session(SAMPLED.replace(rounds=1), dataset=tiny_data)
    p = session.participants
    x = tiny_data.x_train[:32]
    from bmoe.protocol.round import publish_task

    task = publish_task(p.publisher, p.store, 0, x, tiny_data.y_train[:32], train=True)
    p.node.submit(task)
    _, groups, activation = p.validator.activate(task.payload["task_id"], x, train=True)
    p.node.submit(activation)
    state = p.node.working
    expert = sorted(groups)[0]
    outsider = next(e for e in session.edges
                    if e.address not in state.assigned_edges(expert, state.tasks[task.payload["task_id"]]))
    commitment = outsider.signer.sign("commitment", {"task_id": task.payload["task_id"], "results": [
        {"expert": expert, "digest": "ab" * 32, "cid": "bafkrei" + "a" * 52}]})
    with pytest.raises(InvalidTransaction, match=f"sender is not assigned expert {expert}"):
        p.node.submit(commitment)


def test_the_same_seeded_sampled_run_gives_the_same_head_and_the_default_hash_is_unchanged(
        tiny_data: Dataset) -> None:
    heads = []
    for share in (True, False):
        with Session(SAMPLED.replace(malicious_ratio=0.2, share_compute=share), dataset=tiny_data) as session:
            session.train()
            heads.append(session.head_hash)
    assert heads[0] == heads[1]
    assert RunConfig().hash() == RunConfig(replicas=5).hash() != RunConfig(assignment="sampled").hash()


def test_the_real_sampler_lets_a_colluding_sample_through_no_more_often_than_the_bound() -> None:
    edges = tuple(f"{i:064x}" for i in range(10))
    colluders = set(edges[-3:])
    for replicas in (1, 2, 3, 4):
        policy = Sampled(replicas)
        draws = 20_000  # 5 sigma of 20,000 draws: ~0.016 at r = 1, far below the bounds the test tells apart
        escaped = sum(set(policy.assigned(edges, 0, (0, 4, 7), task_seed(hashlib.sha256(str(i).encode()).hexdigest(),
                                                                           "bafkrei" + "b" * 52))) <= colluders
                      for i in range(draws))
        bound = escape_probability(0.3, replicas, 10)
        sigma = math.sqrt(bound * (1 - bound) / draws)
        assert abs(escaped / draws - bound) <= 5 * sigma + 1e-12, (replicas, escaped / draws, bound)


@pytest.mark.parametrize(("changes", "needle"), [
    ({"assignment": "sampled", "replicas": 6}, "sampled replicas r = 6 must be at most M = 5 edges"),
    ({"assignment": "sampled", "replicas": 0}, "replicas (sampled replicas r) must be in [1, 1024]"),
    ({"assignment": "sampled", "framework": "traditional"}, "assignment sampled applies to B-MoE"),
    ({"assignment": "every"}, "assignment must be one of all, sampled"),
])
def test_bad_assignment_settings_are_one_config_error(changes: dict[str, object], needle: str) -> None:
    with pytest.raises(ConfigError) as refused:
        small_config(**changes)
    assert needle in str(refused.value)


def test_a_recorded_assignment_must_be_canonical() -> None:
    assert make_assignment("all").spec() == "all" and make_assignment("host").spec() == "host"
    with pytest.raises(ValueError, match="record it as"):
        make_assignment({"name": "all", "params": {}})
    with pytest.raises(ValueError, match="replicas must be a whole number >= 1"):
        make_assignment({"name": "sampled", "params": {"replicas": 0}})


def test_pbft_replicas_recompute_the_sample_and_seal_every_round(tiny_data: Dataset) -> None:
    config = SAMPLED.replace(consensus="pbft", validators=4, rounds=3, malicious_ratio=0.2)
    with Session(config, dataset=tiny_data) as session:
        session.train()
        assert session.node.state.height == 3 and session.pbft is not None and session.pbft.view_changes == 0


def test_a_block_whose_samples_do_not_recompute_fails_audit_naming_it(tiny_data: Dataset, tmp_path: Path) -> None:
    """A validator re-seals block 2 (other timestamp, so another hash) and relinks the rest: block 3's
    samples, drawn from block 2's hash, are then other edges than those that committed."""
    import dataclasses
    import json

    from bmoe.experiments.runs import train_run
    from bmoe.ledger.errors import LedgerError
    from bmoe.ledger.keys import derive_identity
    from bmoe.run.audit import audit_run_dir
    from tests.ledger.chain_surgery import record_head, reseal_from

    config = SAMPLED.replace(rounds=4)
    run_dir = tmp_path / "run"
    with Session(config, dataset=tiny_data, run_dir=run_dir) as session:
        train_run(config, run_dir, session=session)
    insider = derive_identity(json.loads((run_dir / "config.json").read_text())["seed"], "validator-0")
    head = reseal_from(run_dir / "chain.sqlite", 2, insider,
                       lambda h: dataclasses.replace(h, timestamp=h.timestamp + 7))
    record_head(run_dir, head, config.rounds)
    with pytest.raises(LedgerError, match=r"block 3: .*sender is not assigned expert"):
        audit_run_dir(run_dir, ())
