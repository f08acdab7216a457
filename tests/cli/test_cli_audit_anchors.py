"""``bmoe audit`` says what it was anchored to, takes the user's own anchor (--expect-head), and refuses
bad input in one line: a malformed hash, a chain that is a FIFO, an emptied chain, no run directory."""

from __future__ import annotations

import os
import shutil
import sqlite3
from pathlib import Path

import pytest

from tests.cli.helpers import SMALL, assert_user_error
from tests.cli.helpers import bmoe as bmoe_process
from tests.cli.in_process import bmoe_here as bmoe


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run_dir = tmp_path_factory.mktemp("anchors") / "run"
    result = bmoe("train", "--run-dir", run_dir, "--rounds", "3", *SMALL, "--malicious-ratio", "0.4")
    assert result.returncode == 0, result.stderr
    return run_dir


def head_of(run_dir: Path) -> str:
    with sqlite3.connect(f"file:{run_dir / 'chain.sqlite'}?mode=ro", uri=True) as db:
        return str(db.execute("SELECT hash FROM blocks ORDER BY height DESC LIMIT 1").fetchone()[0])


def test_the_audit_names_its_anchors_and_holds_the_users_head(trained: Path) -> None:
    head = head_of(trained)
    result = bmoe("audit", trained, "--expect-head", head)
    assert result.returncode == 0, result.stderr
    anchored = next(line for line in result.stdout.splitlines() if line.startswith("anchored to:"))
    assert "genesis block" in anchored and "config.json" in anchored and "metrics.json" in anchored
    assert f"block {head} at height 3 from --expect-head" in anchored


def test_a_head_the_chain_does_not_hold_fails_in_one_line(trained: Path) -> None:
    assert_user_error(bmoe("audit", trained, "--expect-head", "ab" * 32), "--expect-head", "not in the chain")


@pytest.mark.parametrize("value", ["", "xyz", "AB" * 32, "ab" * 31, "ab" * 33])
def test_a_malformed_expected_head_is_refused(trained: Path, value: str) -> None:
    assert_user_error(bmoe("audit", trained, "--expect-head", value), "--expect-head")


@pytest.mark.parametrize("args", [[], ["RUN", "--cluster", "elsewhere"]])
def test_one_of_run_dir_or_cluster_is_required(trained: Path, args: list[str]) -> None:
    assert_user_error(bmoe("audit", *[trained if a == "RUN" else a for a in args]), "RUN_DIR or --cluster")


def test_a_chain_file_that_is_a_fifo_is_refused_without_blocking(trained: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    shutil.copytree(trained, run_dir)
    (run_dir / "chain.sqlite").unlink()
    os.mkfifo(run_dir / "chain.sqlite")
    assert_user_error(bmoe_process("audit", run_dir, timeout=60), "not a regular file")  # a hang fails it


def test_an_emptied_chain_fails_in_one_line(trained: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    shutil.copytree(trained, run_dir)
    with sqlite3.connect(run_dir / "chain.sqlite") as db:
        db.execute("DELETE FROM blocks")
    assert_user_error(bmoe("audit", run_dir), "empty")
