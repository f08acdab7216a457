"""Transactions: signing, tampering, hashing, strict wire parsing."""

from __future__ import annotations

import dataclasses
import hashlib
import json

import pytest

from bmoe.ledger.encoding import canonical_json
from bmoe.ledger.errors import InvalidTransaction
from bmoe.ledger.keys import derive_identity
from bmoe.ledger.transactions import (
    TX_KINDS,
    Transaction,
    check_transaction_signature,
    sign_transaction,
    tx_from_dict,
    tx_hash,
    tx_signing_message,
    tx_to_dict,
)

ALICE = derive_identity(1, "alice")
BOB = derive_identity(1, "bob")


def _tx() -> Transaction:
    return sign_transaction(ALICE, "commitment", {"digest": "ab" * 32, "loss": 0.25, "ids": [1, 2]}, 3)


def test_tx_kinds_is_a_tuple_with_every_kind() -> None:
    assert isinstance(TX_KINDS, tuple)
    assert TX_KINDS == (
        "genesis",
        "task",
        "activation",
        "commitment",
        "acceptance",
        "expert_update",
        "update_acceptance",
        "misbehaviour",
        "dispute",
        "gate_update",
        "generation_chunk",
        "settlement",
        "deposit",
        "quality_verdict",
        "capability",
        "departure",
        "placement",
    )


def test_signed_transaction_verifies() -> None:
    tx = _tx()
    assert tx.sender == ALICE.address
    check_transaction_signature(tx)


def test_signing_message_is_documented_canonical_json() -> None:
    tx = _tx()
    fields = {"kind": tx.kind, "sender": tx.sender, "nonce": tx.nonce, "payload": tx.payload}
    expected = canonical_json(fields)
    assert tx_signing_message(tx) == expected


def test_tx_hash_covers_signature() -> None:
    tx = _tx()
    assert tx_hash(tx) == hashlib.sha256(canonical_json(tx_to_dict(tx))).hexdigest()
    assert "signature" in json.loads(canonical_json(tx_to_dict(tx)))


def test_signing_is_deterministic() -> None:
    assert _tx() == _tx()
    assert tx_hash(_tx()) == tx_hash(_tx())


@pytest.mark.parametrize(
    "change",
    [
        {"kind": "acceptance"},
        {"sender": BOB.address},
        {"nonce": 4},
        {"payload": {"digest": "ab" * 32, "loss": 0.26, "ids": [1, 2]}},
        {"payload": {"digest": "ab" * 32, "loss": 0.25, "ids": [2, 1]}},
        {"payload": {"digest": "ab" * 32, "loss": 0.25, "ids": [1, 2], "extra": None}},
        {"signature": BOB.sign(b"anything")},
    ],
)
def test_tampering_any_field_breaks_the_signature(change: dict[str, object]) -> None:
    tampered = dataclasses.replace(_tx(), **change)  # type: ignore[arg-type]
    with pytest.raises(InvalidTransaction, match="bad signature") as info:
        check_transaction_signature(tampered)
    assert info.value.tx_hash == tx_hash(tampered)


def test_signature_of_one_sender_does_not_verify_for_another() -> None:
    tx = _tx()
    forged = Transaction(tx.kind, BOB.address, tx.nonce, tx.payload, tx.signature)
    with pytest.raises(InvalidTransaction):
        check_transaction_signature(forged)


def test_payload_is_copied_on_signing() -> None:
    payload = {"xs": (1, 2), "d": {"k": "v"}}
    tx = sign_transaction(ALICE, "task", payload, 0)
    payload["d"]["k"] = "changed"  # type: ignore[index]
    assert tx.payload == {"xs": [1, 2], "d": {"k": "v"}}
    check_transaction_signature(tx)


def test_dict_round_trip() -> None:
    tx = _tx()
    wire = json.loads(canonical_json(tx_to_dict(tx)))
    assert tx_from_dict(wire) == tx
    assert tx_hash(tx_from_dict(wire)) == tx_hash(tx)


def _wire(**changes: object) -> dict[str, object]:
    wire = tx_to_dict(_tx())
    wire.update(changes)
    return wire


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        ([], "expected a JSON object"),
        (_wire(kind="mint"), "unknown kind 'mint'"),
        (_wire(kind=3), "kind must be a string"),
        (_wire(sender="A" * 64), "sender must be"),
        (_wire(sender=None), "sender must be"),
        (_wire(nonce="3"), "nonce must be an int"),
        (_wire(nonce=True), "nonce must be an int"),
        (_wire(nonce=3.0), "nonce must be an int"),
        (_wire(nonce=-1), "out of range"),
        (_wire(nonce=2**63), "out of range"),
        (_wire(payload=[1]), "payload must be a JSON object"),
        (_wire(payload={"x": float("nan")}), "payload is not canonical JSON"),
        (_wire(signature="00" * 63), "signature must be"),
        (_wire(signature=None), "signature must be"),
        (_wire(extra=1), "unexpected extra"),
        ({k: v for k, v in _wire().items() if k != "nonce"}, "missing nonce"),
    ],
)
def test_from_dict_is_strict(data: object, reason: str) -> None:
    with pytest.raises(InvalidTransaction) as info:
        tx_from_dict(data)
    assert reason in str(info.value)


def test_sign_transaction_rejects_unknown_kind() -> None:
    with pytest.raises(InvalidTransaction, match="unknown kind"):
        sign_transaction(ALICE, "mint", {}, 0)


def test_check_signature_rejects_malformed_fields_without_traceback() -> None:
    bad = dataclasses.replace(_tx(), payload={"x": float("inf")})
    with pytest.raises(InvalidTransaction, match="payload is not canonical JSON"):
        check_transaction_signature(bad)


def test_deeply_nested_payload_is_rejected_cleanly() -> None:
    deep: object = 0
    for _ in range(5000):
        deep = [deep]
    with pytest.raises(InvalidTransaction, match="nested too deeply"):
        sign_transaction(ALICE, "task", {"x": deep}, 0)


def test_a_transaction_checked_once_is_not_trusted_in_another_object() -> None:
    """Signing message, hash and signature check are computed once per transaction object; a tampered copy
    (another object) is checked afresh, and an equal object rebuilt from the wire gives the same answers."""
    tx = _tx()
    check_transaction_signature(tx)
    check_transaction_signature(tx)  # remembered: still fine
    assert tx_hash(tx) == hashlib.sha256(canonical_json(tx_to_dict(tx))).hexdigest()
    for tampered in (dataclasses.replace(tx, nonce=4), dataclasses.replace(tx, payload={**tx.payload, "loss": 0.5})):
        with pytest.raises(InvalidTransaction, match="bad signature"):
            check_transaction_signature(tampered)
        assert tx_hash(tampered) != tx_hash(tx)
    rebuilt = tx_from_dict(json.loads(canonical_json(tx_to_dict(tx))))
    check_transaction_signature(rebuilt)
    assert rebuilt == tx and tx_hash(rebuilt) == tx_hash(tx) and tx_signing_message(rebuilt) == tx_signing_message(tx)
