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
    "generation_chunk",
    "settlement",
    "deposit",
    "quality_verdict",
    "capability",
    "departure",
    "placement",
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


def _message_of(kind: object, sender: object, nonce: object, payload_json: bytes) -> bytes | None:
    """:func:`signing_message` assembled from the payload's canonical JSON, encoded once (the keys in sorted order:
    kind, nonce, payload, sender), for fields of exactly the types a well-formed transaction has; else None."""
    if type(kind) is not str or type(sender) is not str or type(nonce) is not int:
        return None
    return b"".join((b'{"kind":', canonical_json(kind), b',"nonce":', str(nonce).encode("ascii"), b',"payload":',
                     payload_json, b',"sender":', canonical_json(sender), b"}"))


def tx_payload_json(tx: Transaction) -> bytes:
    """The canonical JSON of ``tx.payload`` (``TypeError`` / ``ValueError`` / ``RecursionError`` as
    :func:`canonical_json` raises them), encoded once per transaction object."""
    return _memo(tx, "payload", lambda: canonical_json(dict(tx.payload)))


def tx_payload_size(tx: Transaction) -> int | None:
    """The length of :func:`tx_payload_json`, or None when the payload has no canonical JSON."""
    try:
        return len(tx_payload_json(tx))
    except (TypeError, ValueError, RecursionError):
        return None


def tx_signing_message(tx: Transaction) -> bytes:
    """The bytes ``tx.sender`` signed (or should have)."""
    return _memo(tx, "message", lambda: _signing_message(tx))


def _signing_message(tx: Transaction) -> bytes:
    try:
        message = _message_of(tx.kind, tx.sender, tx.nonce, tx_payload_json(tx))
    except (TypeError, ValueError, RecursionError):
        message = None
    return message if message is not None else signing_message(tx.kind, tx.sender, tx.nonce, tx.payload)


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
    return _memo(tx, "hash", lambda: sha256_hex(tx_json(tx)))


def tx_json(tx: Transaction) -> bytes:
    """The canonical JSON of :func:`tx_to_dict`, once per transaction object: the signing message with the
    signature added (the last key in sorted order)."""
    return _memo(tx, "json", lambda: _tx_json(tx))


def _tx_json(tx: Transaction) -> bytes:
    if type(tx.signature) is str and type(tx.kind) is str and type(tx.sender) is str and type(tx.nonce) is int:
        try:
            message = tx_signing_message(tx)
        except (TypeError, ValueError, RecursionError):
            pass
        else:
            return message[:-1] + b',"signature":' + canonical_json(tx.signature) + b"}"
    return canonical_json(tx_to_dict(tx))


def _field_error(kind: object, sender: object, nonce: object, payload: object) -> str | None:
    """Reason the unsigned fields are malformed, or None."""
    reason = _plain_field_error(kind, sender, nonce, payload)
    if reason is None:
        reason = _payload_json(payload)[1]
    return reason


def _plain_field_error(kind: object, sender: object, nonce: object, payload: object) -> str | None:
    """Reason the unsigned fields are malformed, or None, short of encoding the payload."""
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
    return None


def _payload_json(payload: Mapping[str, Any]) -> tuple[bytes | None, str | None]:
    """The canonical JSON of ``payload``, or why it has none."""
    try:
        return canonical_json(dict(payload)), None
    except RecursionError:
        return None, "payload is nested too deeply"
    except (TypeError, ValueError) as exc:
        return None, f"payload is not canonical JSON: {exc}"


def _safe_hash(obj: object) -> str | None:
    try:
        return sha256_hex(canonical_json(obj))
    except (TypeError, ValueError, RecursionError):
        return None


def transaction_error(tx: Transaction) -> str | None:
    """Reason ``tx`` is structurally malformed (signature not verified), or None."""
    return _memo(tx, "error", lambda: _transaction_error(tx))


def _transaction_error(tx: Transaction) -> str | None:
    reason = _plain_field_error(tx.kind, tx.sender, tx.nonce, tx.payload)
    if reason is None:
        encoded, reason = _payload_json(tx.payload)
        if encoded is not None:
            _memo(tx, "payload", lambda: encoded)
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
    reason = _plain_field_error(kind, identity.address, nonce, payload)
    encoded, reason = _payload_json(payload) if reason is None else (None, reason)
    if encoded is None:
        raise InvalidTransaction(None, reason)
    frozen_payload = json.loads(encoded)  # whose canonical JSON is ``encoded`` again (one value, one encoding)
    message = _message_of(kind, identity.address, nonce, encoded)
    if message is None:  # a str or int subclass among the fields: encoded as a whole
        message = signing_message(kind, identity.address, nonce, frozen_payload)
    tx = Transaction(
        kind=kind,
        sender=identity.address,
        nonce=nonce,
        payload=frozen_payload,
        signature=identity.sign(message),
    )
    _memo(tx, "payload", lambda: encoded)
    _memo(tx, "message", lambda: message)
    _memo(tx, "error", lambda: None if is_signature_hex(tx.signature) else _transaction_error(tx))  # fields: above
    return tx


def check_transaction_signature(tx: Transaction) -> None:
    """Raise :class:`InvalidTransaction` unless ``tx`` is well formed and its signature verifies."""
    reason = transaction_error(tx)
    if reason is not None:
        raise InvalidTransaction(_safe_hash(_loose_dict(tx)), reason)
    if not signature_verifies(tx):
        raise InvalidTransaction(tx_hash(tx), "bad signature")


def signature_verifies(tx: Transaction) -> bool:
    """Whether ``tx.signature`` is ``tx.sender``'s over its signing message, verified once per transaction object:
    its fields are frozen and its message encoded once, so verifying the same object again could only repeat the
    answer (a node checks a transaction when it is submitted and again in the block it seals). A transaction read
    from bytes, a peer's block or a stored chain, is a new object: its signature is verified."""
    return _memo(tx, "signed", lambda: verify_signature(tx.sender, tx_signing_message(tx), tx.signature))


def _loose_dict(tx: Transaction) -> dict[str, Any]:
    payload = dict(tx.payload) if isinstance(tx.payload, Mapping) else tx.payload
    return {
        "kind": tx.kind,
        "sender": tx.sender,
        "nonce": tx.nonce,
        "payload": payload,
        "signature": tx.signature,
    }
