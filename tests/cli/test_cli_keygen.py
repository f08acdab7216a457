"""``bmoe keygen --out FILE``: a fresh Ed25519 key, mode 0600, never overwritten, its public key printed; a key
file others may read is refused wherever a key is loaded."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from bmoe.ledger.errors import LedgerError
from bmoe.ledger.keys import create_identity, generate_identity, load_identity
from bmoe.net.enrolment import load_enrolment
from tests.cli.helpers import assert_user_error
from tests.cli.in_process import bmoe_here as bmoe


def test_keygen_writes_a_private_key_and_prints_the_line_an_operator_hands_in(tmp_path: Path) -> None:
    out = tmp_path / "edge-3.key"
    result = bmoe("keygen", "--out", out)
    assert result.returncode == 0, result.stderr
    identity = load_identity(out)
    assert result.stdout.split() == ["edge-3", identity.address]  # NAME ADDRESS: a line of an enrolment file
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    (tmp_path / "enrol.txt").write_text(result.stdout)
    assert load_enrolment(tmp_path / "enrol.txt") == {"edge-3": identity.address}


def test_two_keys_are_different_and_an_existing_file_is_never_overwritten(tmp_path: Path) -> None:
    first, second = tmp_path / "a.key", tmp_path / "b.key"
    assert bmoe("keygen", "--out", first).returncode == 0
    assert bmoe("keygen", "validator-0", "--out", second).returncode == 0
    assert load_identity(first).address != load_identity(second).address
    assert load_identity(second).name == "validator-0"
    before = first.read_bytes()
    assert_user_error(bmoe("keygen", "--out", first), "already exists", "never overwritten")
    assert first.read_bytes() == before
    with pytest.raises(LedgerError, match="never overwritten"):
        create_identity(first, generate_identity("a"))
    assert first.read_bytes() == before


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o620, 0o666])
def test_a_key_file_others_may_read_or_write_is_refused(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "loose.key"
    create_identity(path, generate_identity("edge-0"))
    os.chmod(path, mode)
    with pytest.raises(LedgerError, match="readable or writable by others"):
        load_identity(path)
    os.chmod(path, 0o600)
    assert load_identity(path).name == "edge-0"


def test_a_store_refuses_a_loose_key_in_one_line(tmp_path: Path) -> None:
    key = tmp_path / "store.key"
    create_identity(key, generate_identity("store-0"))
    os.chmod(key, 0o644)
    (tmp_path / "enrolled.txt").write_text(f"store-0 {load_identity_unchecked(key)}\n")
    result = bmoe("store", "--data-dir", tmp_path / "data", "--key", key, "--enrolled", tmp_path / "enrolled.txt")
    assert_user_error(result, "readable or writable by others", "chmod 600")
    assert not (tmp_path / "data").exists()


def load_identity_unchecked(path: Path) -> str:
    mode = stat.S_IMODE(path.stat().st_mode)
    os.chmod(path, 0o600)
    try:
        return load_identity(path).address
    finally:
        os.chmod(path, mode)
