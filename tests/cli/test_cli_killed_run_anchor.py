"""A run killed with SIGKILL mid-way has no ``metrics.json``, but its chain store anchored the last sealed block in
``head.json`` after each one: the killed run audits clean against it, and a truncated or corrupted WAL (blocks
lost) fails the audit naming the anchor; resuming such a chain is refused, and the anchor file is never torn."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

import bmoe
from bmoe.ledger.chainstore import ChainStore
from bmoe.ledger.errors import ChainStoreError
from tests.cli.helpers import SMALL, assert_user_error
from tests.cli.in_process import bmoe_here

pytestmark = pytest.mark.slow  # a `bmoe train` subprocess killed, then audited: ~5 s of CPU, at the fast tier's guard

SOURCE = Path(bmoe.__file__).resolve().parents[1]  # the code under test, in the child process too


def anchored_height(run_dir: Path) -> int:
    try:
        return int(json.loads((run_dir / "head.json").read_text())["height"])
    except (OSError, ValueError, KeyError):
        return -1


@pytest.fixture(scope="module")
def killed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A ``python -m bmoe train`` of 500 rounds, killed with SIGKILL once it sealed 6 blocks."""
    run_dir = tmp_path_factory.mktemp("killed") / "run"
    env = {"PATH": "/usr/bin:/bin", "HOME": str(Path.home()), "PYTHONPATH": str(SOURCE)}
    process = subprocess.Popen([sys.executable, "-m", "bmoe", "train", "--run-dir", str(run_dir), *SMALL,
                                "--rounds", "500"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while anchored_height(run_dir) < 6:
            assert process.poll() is None and time.monotonic() < deadline, process.stderr
            time.sleep(0.05)
        process.send_signal(signal.SIGKILL)
    finally:
        process.kill()
        process.wait()
    assert process.returncode == -signal.SIGKILL
    assert not (run_dir / "metrics.json").exists()
    return run_dir


def copy_of(run_dir: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "copy"
    shutil.copytree(run_dir, copy)
    (copy / "chain.sqlite-shm").unlink(missing_ok=True)  # a fresh reader rebuilds the WAL index from the WAL
    return copy


def test_a_killed_run_audits_clean_anchored_by_its_last_sealed_block(killed: Path) -> None:
    result = bmoe_here("audit", killed)
    assert result.returncode == 0, result.stderr
    assert f"from {killed / 'head.json'}" in result.stdout
    assert "metrics.json absent" in result.stdout


def test_a_chain_that_lost_its_last_blocks_fails_the_audit_naming_the_anchor(killed: Path, tmp_path: Path) -> None:
    copy = copy_of(killed, tmp_path)
    with ChainStore(copy / "chain.sqlite") as chain:
        height = chain.height()
    with sqlite3.connect(copy / "chain.sqlite") as db:
        db.execute("DELETE FROM blocks WHERE height >= ?", (height - 2,))
    assert_user_error(bmoe_here("audit", copy), "head.json", "is not in the chain")


def test_a_cut_or_corrupted_wal_fails_the_audit_naming_the_anchor(killed: Path, tmp_path: Path) -> None:
    wal = killed / "chain.sqlite-wal"
    assert wal.stat().st_size > 0, "the killed run left its last blocks in the WAL"
    cut = copy_of(killed, tmp_path / "cut")
    os.truncate(cut / "chain.sqlite-wal", wal.stat().st_size // 2)
    assert_user_error(bmoe_here("audit", cut), "head.json", "is not in the chain")
    corrupted = copy_of(killed, tmp_path / "corrupted")
    data = bytearray((corrupted / "chain.sqlite-wal").read_bytes())
    middle = len(data) // 2
    data[middle:middle + 64] = bytes(byte ^ 0xFF for byte in data[middle:middle + 64])  # every bit flipped
    (corrupted / "chain.sqlite-wal").write_bytes(bytes(data))
    assert_user_error(bmoe_here("audit", corrupted), "head.json", "is not in the chain")


def test_resuming_a_chain_that_lost_anchored_blocks_is_refused(killed: Path, tmp_path: Path) -> None:
    cut = copy_of(killed, tmp_path)
    os.truncate(cut / "chain.sqlite-wal", (killed / "chain.sqlite-wal").stat().st_size // 2)
    def kept() -> dict[str, bytes]:  # SQLite may fold its WAL into the database on close: that is not ours
        return {p.name: p.read_bytes() if p.is_file() else b"" for p in cut.iterdir()
                if not p.name.startswith("chain.sqlite")}

    before = kept()
    assert_user_error(bmoe_here("train", "--run-dir", cut, *SMALL, "--rounds", "500"), "no longer holds block",
                      "head.json")
    assert kept() == before
    with pytest.raises(ChainStoreError, match="no longer holds block"):
        ChainStore(cut / "chain.sqlite", anchor=cut / "head.json")


def test_the_anchor_follows_each_appended_block_and_leaves_no_temporary_file(killed: Path, tmp_path: Path) -> None:
    copy = copy_of(killed, tmp_path)
    with ChainStore(copy / "chain.sqlite", anchor=copy / "head.json") as chain:
        assert anchored_height(copy) in (chain.height(), chain.height() - 1)  # killed between commit and anchor
    assert sorted(p.name for p in copy.iterdir() if p.name.startswith(".")) == []
