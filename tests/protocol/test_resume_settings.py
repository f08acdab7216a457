"""Resuming a run refuses any change to a recorded setting, naming it, and writes nothing; only the
execution settings may change. Table-driven over every RunConfig field."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from bmoe.run.config import EXECUTION_SETTINGS, RunConfig
from bmoe.run.run_dir import RunDirError
from bmoe.run.session import Session
from bmoe.storage import cid_of

BASE = RunConfig(dataset="synthetic", num_experts=4, top_k=2, num_edges=5, batch_size=32, difficulty=4, rounds=1,
                 eval_every=100, hidden=16)
RECORDED = [f.name for f in dataclasses.fields(RunConfig) if f.name not in EXECUTION_SETTINGS]
CALIBRATED = {"comparison": "tolerance", "calibration_cid": cid_of(b"calibration.json"), "calibrated_result_max": 1e-6,
              "calibrated_update_max": 1e-7}  # a calibration whose window holds the default bounds
# recorded setting -> a valid change (other settings that must change with it are named too)
CHANGES: dict[str, dict[str, Any]] = {
    "framework": {"framework": "traditional"}, "dataset": {"dataset": "digits"}, "limit_train": {"limit_train": 400},
    "num_experts": {"num_experts": 5}, "top_k": {"top_k": 1}, "num_edges": {"num_edges": 6},
    "expert": {"expert": "cnn"}, "hidden": {"hidden": 17}, "batch_size": {"batch_size": 16}, "lr": {"lr": 0.2},
    "balance": {"balance": 0.0}, "malicious_ratio": {"malicious_ratio": 0.2}, "attack": {"attack": "sign_flip"},
    "attack_params": {"attack_params": {"probability": 1.0}}, "collude": {"collude": False},
    "rule": {"rule": "plurality"}, "rule_fraction": {"rule_fraction": 0.9}, "difficulty": {"difficulty": 3},
    "consensus": {"consensus": "pbft"}, "validators": {"consensus": "pbft", "validators": 4},
    "byzantine_validators": {"consensus": "pbft", "validators": 4, "byzantine_validators": 1},
    "validator_attack": {"validator_attack": "silent"}, "message_delay": {"message_delay": 0.02}, "seed": {"seed": 1},
    "fleet": {"fleet": "default=4,f64=1"}, "comparison": {"comparison": "tolerance"},
    "result_bound": {"comparison": "tolerance", "result_bound": 1e-3},
    "update_bound": {"comparison": "tolerance", "update_bound": 1e-3},
    "validator_fleet": {"consensus": "pbft", "validators": 4, "validator_fleet": "default=3,f64=1"},
    "assignment": {"assignment": "sampled"}, "replicas": {"assignment": "sampled", "replicas": 2},
    "trusted_replicas": {"assignment": "adaptive", "trusted_replicas": 3},
    "trust_after": {"assignment": "adaptive", "trust_after": 5},
    "stake": {"stake": 100}, "reward": {"stake": 100, "reward": 2}, "slash": {"stake": 100, "slash": 50},
    "min_stake": {"stake": 100, "min_stake": 10},
    "calibration_cid": CALIBRATED, "calibrated_result_max": CALIBRATED, "calibrated_update_max": CALIBRATED,
    "force_bound": {**CALIBRATED, "force_bound": True},
}
UNCHANGEABLE: set[str] = set()
EXECUTION_CHANGES: dict[str, Any] = {"threads": 2, "rounds": 2, "eval_every": 1, "share_compute": False,
                                     "limit_test": 50, "data_dir": "/nonexistent-but-unused", "store": "ipfs",
                                     "ipfs_api": "http://127.0.0.1:1", "rpc_url": "http://127.0.0.1:1",
                                     "eth_key": "/nonexistent-but-unused",  # Session takes the store it is given
                                     "stall_after": 3}


def _snapshot(run_dir: Path) -> dict[str, bytes]:
    return {str(p.relative_to(run_dir)): p.read_bytes() for p in sorted(run_dir.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run_dir = tmp_path_factory.mktemp("resume") / "run"
    with Session(BASE, run_dir=run_dir) as session:
        session.train()
    return run_dir


def test_every_recorded_setting_has_a_change_in_the_table() -> None:
    assert set(CHANGES) | UNCHANGEABLE == set(RECORDED)
    assert set(EXECUTION_CHANGES) == EXECUTION_SETTINGS


@pytest.mark.parametrize("name", sorted(CHANGES))
def test_resuming_with_a_recorded_setting_changed_is_refused_naming_it_and_writes_nothing(
        trained: Path, name: str) -> None:
    before = _snapshot(trained)
    with pytest.raises(RunDirError, match=rf"resume: .*{name} was .*, now .*; use a new --run-dir"):
        Session(BASE.replace(**CHANGES[name]), run_dir=trained)
    assert _snapshot(trained) == before


@pytest.mark.parametrize("name", sorted(EXECUTION_CHANGES))
def test_resuming_with_an_execution_setting_changed_is_accepted(tmp_path: Path, name: str) -> None:
    run_dir = tmp_path / "run"
    with Session(BASE, run_dir=run_dir) as session:
        session.train()
    with Session(BASE.replace(**{name: EXECUTION_CHANGES[name]}), run_dir=run_dir) as session:
        assert session.trained_rounds == 1


def test_a_missing_or_edited_config_json_is_named_when_the_setting_cannot_be(trained: Path, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(trained, copy)
    (copy / "config.json").write_text((copy / "config.json").read_text().replace('"batch_size": 32', '"batch_size": 8'))
    with pytest.raises(RunDirError, match=r"config\.json was edited"):
        Session(BASE.replace(batch_size=16), run_dir=copy)
    (copy / "config.json").unlink()
    with pytest.raises(RunDirError, match=r"config\.json is missing"):
        Session(BASE.replace(batch_size=16), run_dir=copy)
    with Session(BASE, run_dir=copy) as session:  # the genesis decides: the same settings resume
        assert session.trained_rounds == 1


def test_a_traditional_run_directory_is_reused_only_with_the_same_settings(tmp_path: Path) -> None:
    run_dir = tmp_path / "trad"
    traditional = BASE.replace(framework="traditional")
    with Session(traditional, run_dir=run_dir) as session:
        session.train()
    before = _snapshot(run_dir)
    with pytest.raises(RunDirError, match="holds a run with other settings: batch_size was 32, now 16"):
        Session(traditional.replace(batch_size=16), run_dir=run_dir)
    with pytest.raises(RunDirError, match="framework was 'traditional', now 'bmoe'"):
        Session(BASE, run_dir=run_dir)
    assert _snapshot(run_dir) == before
    with Session(traditional.replace(rounds=2), run_dir=run_dir) as session:
        assert session.trained_rounds == 0  # nothing to resume: it runs again from round 0
