"""Audit catches one changed byte in the chain or the store and names it; a killed run reopens cleanly,
audits clean and resumes to the same head hash as a run never interrupted."""

from __future__ import annotations

import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bmoe.ledger.chainstore import ChainStore
from bmoe.storage import DirectoryStore
from tests.cli.helpers import SMALL, assert_user_error
from tests.cli.in_process import bmoe_here as bmoe


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run_dir = tmp_path_factory.mktemp("audit") / "run"
    result = bmoe("train", "--run-dir", run_dir, "--rounds", "5", *SMALL, "--malicious-ratio", "0.4",
                  "--attack-param", "probability=0.5")
    assert result.returncode == 0, result.stderr
    assert not (run_dir / "chain.sqlite-wal").exists() or (run_dir / "chain.sqlite-wal").stat().st_size == 0
    return run_dir


def test_audit_of_a_clean_run_passes_and_reports(trained_run: Path, tmp_path: Path) -> None:
    result = bmoe("audit", trained_run)
    assert result.returncode == 0, result.stderr
    with ChainStore(trained_run / "chain.sqlite") as chain:
        head = chain.head_hash()
    assert head in result.stdout and "6 blocks" in result.stdout and "signatures" in result.stdout


def flip_byte_in(path: Path, needle: bytes) -> None:
    data = bytearray(path.read_bytes())
    at = data.find(needle)
    assert at >= 0, "needle not in file"
    data[at] = ord("0") if data[at] != ord("0") else ord("1")
    path.write_bytes(bytes(data))


def test_one_changed_byte_in_the_chain_database_is_named(trained_run: Path, tmp_path: Path) -> None:
    copy = tmp_path / "run"
    shutil.copytree(trained_run, copy)
    with ChainStore(copy / "chain.sqlite") as chain:
        block = chain.block_at(3)
    signature = block.transactions[2].signature.encode()
    flip_byte_in(copy / "chain.sqlite", signature[10:40])
    assert_user_error(bmoe("audit", copy), "block 3")


def test_a_changed_stored_object_is_named(trained_run: Path, tmp_path: Path) -> None:
    copy = tmp_path / "run"
    shutil.copytree(trained_run, copy)
    with ChainStore(copy / "chain.sqlite") as chain:
        genesis = chain.block_at(0).transactions[0].payload
    victim = genesis["expert_cids"][1]
    path = DirectoryStore(copy / "store").path_of(victim)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    assert_user_error(bmoe("audit", copy), "block 0", victim, "corrupt")


def test_a_missing_required_object_is_named(trained_run: Path, tmp_path: Path) -> None:
    copy = tmp_path / "run"
    shutil.copytree(trained_run, copy)
    with ChainStore(copy / "chain.sqlite") as chain:
        task = chain.block_at(2).transactions[0].payload
    DirectoryStore(copy / "store").path_of(task["data_cid"]).unlink()
    assert_user_error(bmoe("audit", copy), "block 2", task["data_cid"], "missing")


def chain_height(path: Path) -> int:
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=1) as conn:
            row = conn.execute("SELECT MAX(height) FROM blocks").fetchone()
    except sqlite3.Error:
        return -1
    return -1 if row[0] is None else int(row[0])


@pytest.mark.slow  # a real `python -m bmoe train` process, killed: 30 rounds
def test_kill_restart_resume_gives_the_uninterrupted_head(tmp_path: Path) -> None:
    args = ["--rounds", "30", *SMALL, "--malicious-ratio", "0.4", "--attack-param", "probability=0.5"]
    killed = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "bmoe", "train", "--run-dir", str(killed), *args],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    while chain_height(killed / "chain.sqlite") < 8 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    height = chain_height(killed / "chain.sqlite")
    assert 8 <= height < 30, f"killed at height {height}: tune the test"
    audited = bmoe("audit", killed)
    assert audited.returncode == 0, audited.stderr
    resumed = bmoe("train", "--run-dir", killed, *args)
    assert resumed.returncode == 0, resumed.stderr
    straight = tmp_path / "straight"
    assert bmoe("train", "--run-dir", straight, *args).returncode == 0
    with ChainStore(killed / "chain.sqlite") as a, ChainStore(straight / "chain.sqlite") as b:
        assert a.height() == b.height() == 30
        assert a.head_hash() == b.head_hash()


def test_infer_serves_among_attackers_and_seals_blocks(trained_run: Path, tmp_path: Path) -> None:
    copy = tmp_path / "run"
    shutil.copytree(trained_run, copy)
    before = chain_height(copy / "chain.sqlite")
    result = bmoe("infer", copy, "--malicious-ratio", "0.4", "--attack", "sign_flip")
    assert result.returncode == 0, result.stderr
    assert "sign_flip" in result.stdout
    assert chain_height(copy / "chain.sqlite") == before + 4  # 128 test samples in tasks of 32
    assert bmoe("audit", copy).returncode == 0


def test_resuming_with_other_settings_is_refused(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    assert bmoe("train", "--run-dir", run_dir, "--rounds", "2", *SMALL).returncode == 0
    other = [arg if arg != "2" else "3" for arg in SMALL]  # --top-k 3 instead of 2
    config_before = (run_dir / "config.json").read_text()
    assert_user_error(bmoe("train", "--run-dir", run_dir, "--rounds", "3", *other), "other settings")
    assert (run_dir / "config.json").read_text() == config_before
    assert chain_height(run_dir / "chain.sqlite") == 2
