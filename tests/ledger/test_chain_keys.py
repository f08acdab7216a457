"""Key derivation, signing and identity files."""

from __future__ import annotations

import hashlib
import json
import stat
from pathlib import Path

import nacl.signing
import pytest

from bmoe.ledger.errors import LedgerError
from bmoe.ledger.keys import derive_identity, load_identity, save_identity, verify_signature


def test_derivation_is_deterministic() -> None:
    assert derive_identity(42, "edge-1").address == derive_identity(42, "edge-1").address
    assert derive_identity(b"seed", "edge-1").address == derive_identity(b"seed", "edge-1").address


def test_derivation_depends_on_name_and_seed() -> None:
    addresses = {
        derive_identity(42, "edge-1").address,
        derive_identity(42, "edge-2").address,
        derive_identity(43, "edge-1").address,
        derive_identity(-42, "edge-1").address,
        derive_identity(b"seed", "edge-1").address,
    }
    assert len(addresses) == 5


def test_derivation_matches_documented_formula() -> None:
    seed_bytes = (-5).to_bytes(8, "big", signed=True)
    seed = hashlib.sha256(b"bmoe-key-v1" + seed_bytes + b"\x00" + "nœud".encode()).digest()
    expected = nacl.signing.SigningKey(seed).verify_key.encode().hex()
    assert derive_identity(-5, "nœud").address == expected
    raw = hashlib.sha256(b"bmoe-key-v1" + b"\x01\x02" + b"\x00" + b"n").digest()
    assert derive_identity(b"\x01\x02", "n").address == nacl.signing.SigningKey(raw).verify_key.encode().hex()


@pytest.mark.parametrize("seed", [2**63, -(2**63) - 1, True, 1.5, "7"])
def test_derivation_rejects_bad_seeds(seed: object) -> None:
    with pytest.raises((TypeError, ValueError)):
        derive_identity(seed, "x")  # type: ignore[arg-type]


def test_address_and_signature_format() -> None:
    ident = derive_identity(1, "a")
    assert len(ident.address) == 64 and ident.address == ident.address.lower()
    sig = ident.sign(b"msg")
    assert len(bytes.fromhex(sig)) == 64
    assert "signing_key" not in repr(ident)


def test_sign_and_verify() -> None:
    ident = derive_identity(1, "a")
    other = derive_identity(1, "b")
    sig = ident.sign(b"hello")
    assert verify_signature(ident.address, b"hello", sig)
    assert not verify_signature(ident.address, b"hellO", sig)
    assert not verify_signature(other.address, b"hello", sig)
    flipped = sig[:10] + ("0" if sig[10] != "0" else "1") + sig[11:]
    assert not verify_signature(ident.address, b"hello", flipped)


@pytest.mark.parametrize(
    ("address", "message", "signature"),
    [
        ("zz" * 32, b"m", "00" * 64),
        ("ab" * 31, b"m", "00" * 64),
        (None, b"m", "00" * 64),
        ("ab" * 32, "m", "00" * 64),
        ("ab" * 32, b"m", "00" * 63),
        ("ab" * 32, b"m", 12),
        ("00" * 32, b"m", "00" * 64),
    ],
)
def test_verify_never_raises_on_malformed_input(address: object, message: object, signature: object) -> None:
    assert verify_signature(address, message, signature) is False  # type: ignore[arg-type]


def test_verify_rejects_uppercase_hex() -> None:
    ident = derive_identity(1, "a")
    sig = ident.sign(b"m")
    assert not verify_signature(ident.address.upper(), b"m", sig)
    assert not verify_signature(ident.address, b"m", sig.upper())


def test_save_and_load_identity(tmp_path: Path) -> None:
    ident = derive_identity(9, "validator")
    path = tmp_path / "id.json"
    save_identity(path, ident)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    loaded = load_identity(path)
    assert loaded.name == "validator"
    assert loaded.address == ident.address
    assert verify_signature(ident.address, b"x", loaded.sign(b"x"))
    # Overwriting keeps 0600 even if the old file was world-readable.
    path.chmod(0o644)
    save_identity(path, derive_identity(10, "other"))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_identity(path).name == "other"
    assert [p.name for p in tmp_path.iterdir()] == ["id.json"]


def test_load_identity_rejects_mismatched_address(tmp_path: Path) -> None:
    path = tmp_path / "id.json"
    save_identity(path, derive_identity(9, "v"))
    body = json.loads(path.read_text())
    body["address"] = derive_identity(9, "w").address
    path.write_text(json.dumps(body))
    with pytest.raises(LedgerError, match="address does not match"):
        load_identity(path)


@pytest.mark.parametrize(
    "text", ["not json", "[]", '{"version":1}', '{"version":1,"name":"x","seed":"zz","address":""}']
)
def test_load_identity_rejects_malformed_files(tmp_path: Path, text: str) -> None:
    path = tmp_path / "id.json"
    path.write_text(text)
    with pytest.raises(LedgerError, match="identity file"):
        load_identity(path)
