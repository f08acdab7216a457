"""Seeds fix everything: the same run twice gives the same head hash; sharing compute changes nothing."""

from __future__ import annotations

from pathlib import Path

from bmoe.run.session import Session
from tests.conftest import small_config


def run_head(tmp: Path, name: str, tiny_data, **changes: object) -> str:  # type: ignore[no-untyped-def]
    with Session(small_config(**changes), dataset=tiny_data, run_dir=tmp / name) as session:
        session.train()
        head = session.head_hash
    assert head is not None
    return head


def test_same_seed_same_head_hash(tmp_path: Path, tiny_data) -> None:  # type: ignore[no-untyped-def]
    attacked = {"malicious_ratio": 0.4, "attack": "gaussian"}
    first = run_head(tmp_path, "a", tiny_data, **attacked)
    assert first == run_head(tmp_path, "b", tiny_data, **attacked)
    assert first != run_head(tmp_path, "c", tiny_data, seed=12, **attacked)


def test_sharing_compute_gives_identical_ledger(tmp_path: Path, tiny_data) -> None:  # type: ignore[no-untyped-def]
    for attack in ("gaussian", "sign_flip"):
        settings = {"malicious_ratio": 0.4, "attack": attack, "attack_params": {"probability": 0.5}}
        shared = run_head(tmp_path, f"shared-{attack}", tiny_data, share_compute=True, **settings)
        separate = run_head(tmp_path, f"separate-{attack}", tiny_data, share_compute=False, **settings)
        assert shared == separate


def test_sharing_computes_each_distinct_replica_once(tiny_data) -> None:  # type: ignore[no-untyped-def]
    shared = Session(small_config(malicious_ratio=0.4, attack_params={"probability": 1.0}), dataset=tiny_data)
    shared.train(rounds=1)
    separate = Session(small_config(malicious_ratio=0.4, attack_params={"probability": 1.0},
                                    share_compute=False), dataset=tiny_data)
    separate.train(rounds=1)
    activated = 4  # with 32 samples and K=2 every one of the 4 experts is activated
    # Shared: one honest and one (colluding) manipulated forward per expert; separate: one per edge.
    assert sum(r.forward_passes for r in shared.runtimes) == 2 * activated
    assert sum(r.forward_passes for r in separate.runtimes) == 5 * activated


def test_pruned_run_keeps_only_the_state_its_evidence_and_the_same_ledger(tiny_data) -> None:  # type: ignore[no-untyped-def]
    full = Session(small_config(malicious_ratio=0.4), dataset=tiny_data)
    full.train()
    pruned = Session(small_config(malicious_ratio=0.4), dataset=tiny_data, keep_objects=False)
    pruned.train()
    assert pruned.head_hash == full.head_hash
    state = pruned.node.state
    assert pruned.evidence  # the attackers were accused: the proof of each accusation is pinned
    assert set(pruned.store.cids()) == {state.gate_cid, *state.expert_cids, *pruned.evidence}
    assert len(list(full.store.cids())) > len(list(pruned.store.cids()))
    measured = Session(small_config(malicious_ratio=0.4), dataset=tiny_data, keep_objects=False, keep_evidence=False)
    measured.train()  # an experiment that never audits: the evidence goes too, the ledger is the same
    assert measured.head_hash == full.head_hash and not measured.evidence
    assert set(measured.store.cids()) == {state.gate_cid, *state.expert_cids}


def test_a_task_signed_elsewhere_runs_to_the_same_ledger(tiny_data) -> None:  # type: ignore[no-untyped-def]
    """The deployment's path: a publisher signs and stores the task, the validator runs it."""
    from bmoe.data import task_batches
    from bmoe.protocol.round import publish_task

    direct = Session(small_config(malicious_ratio=0.4), dataset=tiny_data)
    direct.train(rounds=2)
    published = Session(small_config(malicious_ratio=0.4), dataset=tiny_data)
    for round_index, indices in task_batches(tiny_data, 32, published.config.seed, 2):
        task = publish_task(published.publisher, published.store, round_index, tiny_data.x_train[indices],
                            tiny_data.y_train[indices], train=True)
        published.run_published(task)
    assert published.head_hash == direct.head_hash
