"""``bmoe lm train`` on the real corpus: a tiny model through B-MoE into a run directory that `bmoe audit` checks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli.helpers import assert_user_error
from tests.cli.in_process import bmoe_here
from tests.lm.conftest import CachedCorpus

TINY = ["--layers", "1", "--d-model", "16", "--expert-width", "16", "--heads", "2", "--kv-heads", "1", "--experts",
        "4", "--top-k", "2", "--context", "8", "--sequences", "2", "--steps", "2", "--eval-every", "2",
        "--eval-batches", "1", "--edges", "3", "--difficulty", "0"]


def test_train_writes_a_run_that_audits_and_records_its_settings(shakespeare: CachedCorpus, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    result = bmoe_here("lm", "train", "--run-dir", run_dir, "--cache-dir", shakespeare.cache_dir, "--quiet", *TINY)
    assert result.returncode == 0, result.stderr
    assert "bits/char" in result.stdout
    settings = json.loads((run_dir / "lm.json").read_text())
    assert settings["lm"]["layers"] == 1 and settings["lm"]["kv_heads"] == 1
    history = json.loads((run_dir / "history.json").read_text())
    assert [point["step"] for point in history["validation"]] == [2]
    audit = bmoe_here("audit", run_dir)
    assert audit.returncode == 0 and "lm.json" in audit.stdout


@pytest.mark.parametrize(("flags", "needles"), [
    (["--top-k", "5"], ["top-k 5", "experts per layer 4"]),
    (["--tokenizer", "words"], ["words"]),
    (["--lr", "0"], ["max_lr"]),
    (["--heads", "3"], ["num_attention_heads"]),
])
def test_bad_settings_are_one_line_and_write_nothing(tmp_path: Path, flags: list[str], needles: list[str]) -> None:
    result = bmoe_here("lm", "train", "--run-dir", tmp_path / "run", *TINY, *flags)
    assert_user_error(result, *needles)
    assert not (tmp_path / "run").exists()


def test_a_directory_holding_a_run_is_refused(shakespeare: CachedCorpus, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "lm.json").write_text("{}")
    result = bmoe_here("lm", "train", "--run-dir", run_dir, "--cache-dir", shakespeare.cache_dir, *TINY)
    assert_user_error(result, "already holds a run")
    assert sorted(path.name for path in run_dir.iterdir()) == ["lm.json"]
