"""``bmoe audit`` of a language model's run: the chain replayed, and every round's validator computation too."""

from __future__ import annotations

from pathlib import Path

from bmoe.ledger.chainstore import ChainStore
from bmoe.protocol.lm.replay import LMReplay
from bmoe.run.audit import audit_run_dir
from bmoe.run.lm.config import LMRunConfig
from bmoe.run.lm.session import LMSession
from tests.lm.lm_runs import CHARS, IDS, TINY_LM


def _run(run_dir: Path, **run: object) -> LMSession:
    config = LMRunConfig.build({**TINY_LM, "steps": 2}, {"num_edges": 5, "difficulty": 0, "seed": 7, **run})
    cut = int(IDS.numel() * 0.9)
    session = LMSession(config, "".join(CHARS).encode(), len(CHARS), IDS[:cut], IDS[cut:], run_dir)
    session.train()
    session.close()
    return session


def test_the_audit_replays_every_round_and_anchors_the_genesis_to_the_runs_settings(tmp_path: Path) -> None:
    session = _run(tmp_path / "run", malicious_ratio=0.2, attack="sign_flip", attack_params={"probability": 1.0})
    report = audit_run_dir(tmp_path / "run", ())
    assert report.head_hash == session.head_hash()
    assert report.height == 2 * 2 * 2  # a block per task: 2 rounds, 2 layers, 2 directions
    assert any("lm.json" in line for line in report.anchored_to)
    assert report.evidence_required > 0  # the liar's answers, behind its records


def test_the_replay_names_a_round_stepped_with_another_learning_rate(tmp_path: Path) -> None:
    session = _run(tmp_path / "run")
    chain = ChainStore(tmp_path / "run" / "chain.sqlite")
    blocks = list(chain.iter_blocks())
    honest, wrong = LMReplay(session.store, session.config.lm.lr), LMReplay(session.store, lambda step: 0.5)
    steps = 0
    for block in blocks[1:]:
        assert honest.block_error(block) is None
        error = wrong.block_error(block)
        trusted_step = any(tx.kind == "task" and tx.payload["task_id"].endswith("-b0") for tx in block.transactions)
        assert (error is not None and "(gate_update): gate_cid" in error) if trusted_step else error is None
        steps += trusted_step
    assert steps == 2  # one per round: the trusted part steps in the last backward task
    chain.close()
