"""A language model trained through B-MoE: the same model as without the protocol, one ledger task per layer and
direction, every expert call decided, attackers outvoted."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import pytest

from bmoe.edge.behaviour import AttackContext, EdgeBehaviour, Weights
from bmoe.ledger.chainstore import ChainStore
from bmoe.ledger.state import LedgerState, apply_block
from bmoe.lm.config import LMConfig
from bmoe.protocol.lm.round import task_ids
from tests.lm.lm_runs import max_difference, reference_training, tiny_session


def test_bmoe_training_is_bit_identical_to_training_without_the_protocol() -> None:
    session = tiny_session()
    history = session.train()
    reference = reference_training(session, 4)
    assert max_difference(session.ledger_model(), reference) == 0.0
    assert [r["loss"] for r in history.rounds] == sorted((r["loss"] for r in history.rounds), reverse=True)


def test_a_round_is_a_block_per_layer_and_direction_and_every_call_is_decided(tmp_path: Path) -> None:
    session = tiny_session(lm={"steps": 1}, run_dir=tmp_path / "run")
    session.train()
    session.close()
    config: LMConfig = session.model_config
    chain = ChainStore(tmp_path / "run" / "chain.sqlite")
    state, tasks = LedgerState(), []
    for block in chain.iter_blocks():
        state = apply_block(state, block)
        tasks += list(state.tasks.values()) if block.header.height > 0 else []
        assert len(state.tasks) == (block.header.height > 0)  # one task a block
    chain.close()
    assert [task.task_id for task in tasks] == task_ids(0, config.num_hidden_layers, True)
    assert state.train_tasks == config.num_hidden_layers  # backward tasks train; forward tasks are inference
    for task in tasks:
        layer = int(task.task_id[-1])
        activated = task.activated()
        assert activated and all(config.layer_expert(slot)[0] == layer for slot in activated)  # one layer's slots
        accepted = {slot for slot, cid in task.accepted_cids["result"].items() if cid is not None}
        assert set(task.verdicts["result"]) == set(activated) == accepted
        if task.kind == "train":
            assert set(task.verdicts["update"]) == accepted  # every accepted call stepped its expert
    genesis = tiny_session(lm={"steps": 1}).node.view()  # before any round
    assert state.gate_cid != genesis.gate_cid  # the trusted part stepped, recorded in the last backward task
    assert all(a != b for a, b in zip(state.expert_cids, genesis.expert_cids, strict=True))  # every expert stepped


def test_a_seeded_run_gives_the_same_head_hash_twice_and_another_seed_another() -> None:
    first, second = tiny_session(lm={"steps": 2}), tiny_session(lm={"steps": 2})
    first.train()
    second.train()
    assert first.head_hash() == second.head_hash()
    other = tiny_session(lm={"steps": 2}, seed=8)
    other.train()
    assert other.head_hash() != first.head_hash()


@pytest.mark.parametrize("attack", ["sign_flip", "gaussian", "gaussian_persistent", "scale", "replay", "random",
                                    "withhold"])
def test_an_honest_majority_trains_the_clean_runs_model_and_the_liars_are_recorded(attack: str) -> None:
    clean = tiny_session(lm={"steps": 3})
    clean.train()
    attacked = tiny_session(lm={"steps": 3}, malicious_ratio=0.4, attack=attack, attack_params={"probability": 1.0})
    history = attacked.train()
    assert attacked.node.view().expert_cids == clean.node.view().expert_cids
    assert attacked.node.view().gate_cid == clean.node.view().gate_cid
    assert sum(r["misbehaviour"] for r in history.rounds) > 0
    records = attacked.node.view().edge_records
    liars = [edge.address for edge in attacked.edges if edge.behaviour.malicious]
    assert liars and all(records[address].dissent + records[address].withheld > 0 for address in liars)


def test_a_bound_hugging_attacker_stays_within_the_tolerance_and_the_model_stays_the_clean_one() -> None:
    bounds = {"comparison": "tolerance", "result_bound": 1e-4, "update_bound": 1e-5}
    clean = tiny_session(lm={"steps": 2}, **bounds)
    clean.train()
    hugging = tiny_session(lm={"steps": 2}, malicious_ratio=0.4, attack="bound_hug", **bounds)
    hugging.train()
    # the huggers join the honest group, whose element-wise median is the honest majority's value
    assert max_difference(hugging.ledger_model(), clean.ledger_model()) == 0.0


def test_the_traditional_deployment_takes_an_attackers_results() -> None:
    clean = tiny_session(lm={"steps": 3}, framework="traditional", num_edges=8)
    clean.train()
    attacked = tiny_session(lm={"steps": 3}, framework="traditional", num_edges=8, malicious_ratio=0.25,
                            attack="sign_flip", attack_params={"probability": 1.0})
    attacked.train()
    assert len(attacked.edges) == attacked.model_config.num_slots  # one edge per (layer, expert)
    assert max_difference(attacked.ledger_model(), clean.ledger_model()) > 0


def test_sampled_replicas_dispute_a_split_sample_and_still_train_the_clean_model() -> None:
    clean = tiny_session(lm={"steps": 2}, assignment="sampled", replicas=2)
    clean.train()
    attacked = tiny_session(lm={"steps": 2}, assignment="sampled", replicas=2, malicious_ratio=0.2,
                            attack="sign_flip", attack_params={"probability": 1.0})
    attacked.train()
    assert attacked.node.view().expert_cids == clean.node.view().expert_cids


def test_adaptive_assignment_among_an_attacker_trains_the_clean_model_and_records_it() -> None:
    clean = tiny_session(lm={"steps": 2}, assignment="adaptive", replicas=3, trusted_replicas=2)
    clean.train()
    attacked = tiny_session(lm={"steps": 2}, assignment="adaptive", replicas=3, trusted_replicas=2,
                            malicious_ratio=0.2, attack="gaussian", attack_params={"probability": 1.0})
    attacked.train()
    assert attacked.node.view().expert_cids == clean.node.view().expert_cids
    assert sum(r["misbehaviour"] for r in attacked.history.rounds) > 0


def test_a_pruned_run_keeps_the_ledgers_model_and_the_evidence_and_nothing_else() -> None:
    from bmoe.run.lm.config import LMRunConfig
    from bmoe.run.lm.session import LMSession
    from tests.lm.lm_runs import CHARS, IDS, TINY_LM

    config = LMRunConfig.build({**TINY_LM, "steps": 2}, {"num_edges": 5, "difficulty": 0, "seed": 7,
                                                         "malicious_ratio": 0.2, "attack": "sign_flip",
                                                         "attack_params": {"probability": 1.0}})
    cut = int(IDS.numel() * 0.9)
    pruned = LMSession(config, "".join(CHARS).encode(), len(CHARS), IDS[:cut], IDS[cut:], keep_objects=False)
    pruned.train()
    kept = tiny_session(lm={"steps": 2}, malicious_ratio=0.2, attack="sign_flip", attack_params={"probability": 1.0})
    kept.train()
    state = pruned.node.view()
    assert pruned.head_hash() == kept.head_hash()  # pruning changes nothing recorded
    stored = set(pruned.store.cids())
    assert {state.gate_cid, *state.expert_cids, pruned.tokenizer_cid} <= stored
    assert pruned.evidence and pruned.evidence <= stored  # the liar's answers, behind its records
    assert stored == {state.gate_cid, *state.expert_cids, pruned.tokenizer_cid, *pruned.evidence}
    assert len(stored) < len(set(kept.store.cids())) / 2
    assert pruned.validate() == kept.validate()


def test_an_odd_number_of_layers_and_experts_no_token_reaches_still_train_bit_identically() -> None:
    session = tiny_session(lm={"layers": 3, "lm_experts": 8, "lm_top_k": 1, "sequences": 1, "steps": 3})
    unrouted = []
    session.train(on_round=lambda outcome, lr: unrouted.append(outcome.counts.count(0)))
    assert sum(unrouted) > 0  # 16 tokens over 8 experts a layer: some expert gets none (its object keeps its step)
    assert max_difference(session.ledger_model(), reference_training(session, 3)) == 0.0


def test_a_backward_task_with_no_accepted_call_is_recorded_and_audited(tmp_path: Path) -> None:
    from bmoe.run.audit import audit_run_dir

    session = tiny_session(lm={"steps": 1}, run_dir=tmp_path / "run", num_edges=3, malicious_ratio=0.67,
                           attack="withhold", attack_params={"probability": 1.0})
    session.train()
    session.close()
    records = session.node.view().edge_records
    assert sum(record.withheld for record in records.values()) > 0
    report = audit_run_dir(tmp_path / "run", ())
    assert report.head_hash == session.head_hash()


class _DropsMoments(EdgeBehaviour):
    """Commits updated weights without their AdamW moments: an object no edge could step from."""

    name: ClassVar[str] = "drops_moments"
    malicious: ClassVar[bool] = True

    def tamper_update(self, ctx: AttackContext, base: Weights, updated: Weights) -> Weights | None:
        return {name: tensor for name, tensor in updated.items() if not name.startswith("adam.")}


def test_an_update_of_another_form_is_malformed_even_unverified_and_the_run_goes_on() -> None:
    session = tiny_session(lm={"steps": 2}, framework="traditional", num_edges=8)
    session.edges[0].behaviour = _DropsMoments()  # hosts slot 0 alone: its update is accepted by nobody else
    genesis = tiny_session(lm={"steps": 2}, framework="traditional", num_edges=8).node.view().expert_cids
    history = session.train()
    assert session.node.view().expert_cids[0] == genesis[0]  # never replaced by an object of another form
    assert session.node.view().expert_cids[1] != genesis[1]
    assert len(history.validation) == 1 and session.edges[0].address in session.node.view().edge_records
