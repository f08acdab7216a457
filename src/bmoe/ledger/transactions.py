"""Signed ledger transactions.

Owns the transaction data type, its kinds, its signing message, its hash and its
strict dict (wire) form.  Payload schemas per kind are *not* checked here: that is
the state machine's job; here a payload is any JSON object with string keys.

Signing message: ``canonical_json({"kind", "sender", "nonce", "payload"})``.
Transaction hash: ``sha256_hex(canonical_json(tx_to_dict(tx)))`` (includes the
signature).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from bmoe.ledger.encoding import canonical_json, sha256_hex
from bmoe.ledger.errors import InvalidTransaction
from bmoe.ledger.keys import Identity, is_address, is_signature_hex, verify_signature

TX_KINDS: tuple[str, ...] = (
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
)

TX_FIELDS: frozenset[str] = frozenset({"kind", "sender", "nonce", "payload", "signature"})

MAX_NONCE = 2**63 - 1


@dataclass(frozen=True)
class Transaction:
    """A signed transaction.  ``payload`` is a JSON object; treat it as immutable: its signing message, hash,
    well-formedness and signature check are computed once per object (:func:`_memo`)."""

    kind: str
    sender: str
    nonce: int
    payload: Mapping[str, Any]
    signature: str


T = TypeVar("T")


def _memo(tx: Transaction, name: str, compute: Callable[[], T]) -> T:
    """``compute()``, once per transaction object: a round checks, hashes and encodes each transaction several
    times (signed, submitted, hashed into the Merkle root, judged again when sealed). A transaction read from
    a disk or the network is a new object, checked afresh."""
    memo = tx.__dict__.get("_memo")
    if memo is None:
        memo = {}
        object.__setattr__(tx, "_memo", memo)  # frozen, and not one of its fields: not compared nor encoded
    if name not in memo:
        memo[name] = compute()
    return memo[name]  # type: ignore[no-any-return]


def signing_message(kind: str, sender: str, nonce: int, payload: Mapping[str, Any]) -> bytes:
    """The bytes a sender signs."""
    return canonical_json({"kind": kind, "sender": sender, "nonce": nonce, "payload": dict(payload)})


def tx_signing_message(tx: Transaction) -> bytes:
    """The bytes ``tx.sender`` signed (or should have)."""
    return _memo(tx, "message", lambda: signing_message(tx.kind, tx.sender, tx.nonce, tx.payload))


def tx_to_dict(tx: Transaction) -> dict[str, Any]:
    """Wire form of ``tx`` (a fresh dict; the payload is shared, not copied)."""
    return {
        "kind": tx.kind,
        "sender": tx.sender,
        "nonce": tx.nonce,
        "payload": dict(tx.payload),
        "signature": tx.signature,
    }


def tx_hash(tx: Transaction) -> str:
    """SHA-256 hex of the canonical JSON of the full transaction, signature included."""
    return _memo(tx, "hash", lambda: sha256_hex(canonical_json(tx_to_dict(tx))))


def _field_error(kind: object, sender: object, nonce: object, payload: object) -> str | None:
    """Reason the unsigned fields are malformed, or None."""
    if not isinstance(kind, str):
        return f"kind must be a string, got {type(kind).__name__}"
    if kind not in TX_KINDS:
        return f"unknown kind {kind!r}"
    if not is_address(sender):
        return "sender must be a 64-char lower-case hex address"
    if isinstance(nonce, bool) or not isinstance(nonce, int):
        return f"nonce must be an int, got {type(nonce).__name__}"
    if not 0 <= nonce <= MAX_NONCE:
        return f"nonce {nonce} out of range [0, 2**63-1]"
    if not isinstance(payload, Mapping):
        return f"payload must be a JSON object, got {type(payload).__name__}"
    try:
        canonical_json(dict(payload))
    except RecursionError:
        return "payload is nested too deeply"
    except (TypeError, ValueError) as exc:
        return f"payload is not canonical JSON: {exc}"
    return None


def _safe_hash(obj: object) -> str | None:
    try:
        return sha256_hex(canonical_json(obj))
    except (TypeError, ValueError, RecursionError):
        return None


def transaction_error(tx: Transaction) -> str | None:
    """Reason ``tx`` is structurally malformed (signature not verified), or None."""
    return _memo(tx, "error", lambda: _transaction_error(tx))


def _transaction_error(tx: Transaction) -> str | None:
    reason = _field_error(tx.kind, tx.sender, tx.nonce, tx.payload)
    if reason is None and not is_signature_hex(tx.signature):
        reason = "signature must be 128 lower-case hex chars"
    return reason


def tx_from_dict(data: object) -> Transaction:
    """Strictly parse the wire form of a transaction.

    Exactly the keys kind, sender, nonce, payload, signature with the right types;
    anything else raises :class:`InvalidTransaction` with a reason.  The signature
    is *not* verified (see :func:`check_transaction_signature`).
    """
    if not isinstance(data, Mapping):
        raise InvalidTransaction(None, f"expected a JSON object, got {type(data).__name__}")
    h = _safe_hash(dict(data))
    keys = set(data)
    if keys != TX_FIELDS:
        missing = sorted(str(k) for k in TX_FIELDS - keys)
        extra = sorted(str(k) for k in keys - TX_FIELDS)
        parts = ([f"missing {', '.join(missing)}"] if missing else []) + (
            [f"unexpected {', '.join(extra)}"] if extra else []
        )
        raise InvalidTransaction(h, "fields: " + "; ".join(parts))
    tx = Transaction(
        kind=data["kind"],
        sender=data["sender"],
        nonce=data["nonce"],
        payload=data["payload"],
        signature=data["signature"],
    )
    reason = transaction_error(tx)
    if reason is not None:
        raise InvalidTransaction(h, reason)
    return tx


def sign_transaction(identity: Identity, kind: str, payload: Mapping[str, Any], nonce: int) -> Transaction:
    """Build and sign a transaction from ``identity``.

    The payload is copied through canonical JSON (tuples become lists), so the
    result equals ``tx_from_dict(tx_to_dict(result))`` and later mutation of the
    caller's payload does not affect it.
    """
    reason = _field_error(kind, identity.address, nonce, payload)
    if reason is not None:
        raise InvalidTransaction(None, reason)
    frozen_payload = json.loads(canonical_json(dict(payload)))
    message = signing_message(kind, identity.address, nonce, frozen_payload)
    tx = Transaction(
        kind=kind,
        sender=identity.address,
        nonce=nonce,
        payload=frozen_payload,
        signature=identity.sign(message),
    )
    _memo(tx, "message", lambda: message)
    _memo(tx, "error", lambda: None if is_signature_hex(tx.signature) else _transaction_error(tx))  # fields: above
    return tx


def check_transaction_signature(tx: Transaction) -> None:
    """Raise :class:`InvalidTransaction` unless ``tx`` is well formed and its signature verifies."""
    reason = transaction_error(tx)
    if reason is not None:
        raise InvalidTransaction(_safe_hash(_loose_dict(tx)), reason)
    if not _memo(tx, "signed", lambda: verify_signature(tx.sender, tx_signing_message(tx), tx.signature)):
        raise InvalidTransaction(tx_hash(tx), "bad signature")


def _loose_dict(tx: Transaction) -> dict[str, Any]:
    payload = dict(tx.payload) if isinstance(tx.payload, Mapping) else tx.payload
    return {
        "kind": tx.kind,
        "sender": tx.sender,
        "nonce": tx.nonce,
        "payload": payload,
        "signature": tx.signature,
    }
