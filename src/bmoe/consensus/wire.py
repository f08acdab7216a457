"""Wire helpers shared by the consensus engines: size limit, strict parsing, signatures.

Owns the byte-level rules every consensus message obeys: at most ``limit`` bytes, exactly the
canonical JSON of ``bmoe.ledger.encoding`` (one value, one encoding), closed field sets with typed
values, payloads as canonical base64, and Ed25519 signatures over a domain tag plus the canonical
body. Every check raises :class:`~bmoe.consensus.engine.Rejected` with a named reason and nothing
else, whatever the input. Must not know any message type or protocol rule.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections import OrderedDict
from typing import Any

from bmoe.consensus.engine import Reason, Rejected
from bmoe.ledger.encoding import canonical_json, decode_canonical_json, is_hex64
from bmoe.ledger.keys import Identity, is_signature_hex, verify_signature

MAX_UINT = 2**63 - 1
MAX_NAME = 64  # validator / miner names are short labels
MAX_LIST = 4096  # no honest message carries a longer list


def decode_message(message: object, limit: int) -> dict[str, Any]:
    """Bytes → dict, or ``Rejected(oversized | malformed)``."""
    if not isinstance(message, bytes | bytearray):
        raise Rejected(Reason.MALFORMED, f"message is {type(message).__name__}, not bytes")
    if len(message) > limit:
        raise Rejected(Reason.OVERSIZED, f"{len(message)} bytes > limit {limit}")
    try:
        obj = decode_canonical_json(bytes(message))
    except (ValueError, RecursionError) as exc:
        raise Rejected(Reason.MALFORMED, str(exc)[:200]) from None
    if not isinstance(obj, dict):
        raise Rejected(Reason.MALFORMED, "top level is not an object")
    return obj


def malformed(where: str, what: str) -> Rejected:
    return Rejected(Reason.MALFORMED, f"{where}: {what}")


def expect_object(value: Any, keys: set[str], where: str) -> dict[str, Any]:
    """A dict with exactly ``keys``."""
    if not isinstance(value, dict):
        raise malformed(where, "expected an object")
    if set(value) != keys:
        raise malformed(where, f"fields {sorted(value)} != {sorted(keys)}")
    return value


def expect_uint(value: Any, where: str, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= MAX_UINT:
        raise malformed(where, f"expected an integer >= {minimum}")
    return value


def expect_bool(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise malformed(where, "expected a boolean")
    return value


def expect_name(value: Any, where: str) -> str:
    if not isinstance(value, str) or not 0 < len(value) <= MAX_NAME:
        raise malformed(where, f"expected a name of 1..{MAX_NAME} characters")
    return value


def expect_literal(value: Any, allowed: tuple[str, ...], where: str) -> str:
    if not isinstance(value, str) or value not in allowed:
        raise malformed(where, f"expected one of {allowed}")
    return value


def expect_hex64(value: Any, where: str) -> str:
    if not is_hex64(value):
        raise malformed(where, "expected 64 lower-case hex characters")
    return value


def expect_sig(value: Any, where: str) -> str:
    if not is_signature_hex(value):
        raise malformed(where, "expected a 128-hex-character signature")
    return value


def expect_list(value: Any, where: str, max_len: int = MAX_LIST) -> list[Any]:
    if not isinstance(value, list) or len(value) > max_len:
        raise malformed(where, f"expected a list of at most {max_len} items")
    return value


def encode_payload(payload: bytes) -> str:
    return base64.b64encode(payload).decode("ascii")


def expect_payload(value: Any, where: str) -> bytes:
    """Canonical (padded, standard-alphabet) base64 → bytes."""
    if not isinstance(value, str):
        raise malformed(where, "expected base64 text")
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise malformed(where, "not valid base64") from None
    if encode_payload(raw) != value:
        raise malformed(where, "base64 is not canonical")
    return raw


class SignatureChecker:
    """Ed25519 over ``domain + canonical_json(body)``, remembering recent successes.

    Certificates travel inside several messages (a view change, then a new view); the cache keeps
    each signature from being verified more than once. Only successes are cached.
    """

    def __init__(self, domain: bytes, capacity: int = 8192) -> None:
        self.domain = domain
        self.capacity = capacity
        self._ok: OrderedDict[bytes, None] = OrderedDict()

    def sign(self, identity: Identity, body: dict[str, Any]) -> str:
        return identity.sign(self.domain + canonical_json(body))

    def verify(self, address: str, body: dict[str, Any], signature: str) -> bool:
        try:
            message = self.domain + canonical_json(body)
        except (TypeError, ValueError):
            return False
        key = hashlib.sha256(address.encode() + b"|" + signature.encode() + b"|" + message).digest()
        if key in self._ok:
            return True
        if not verify_signature(address, message, signature):
            return False
        self._ok[key] = None
        if len(self._ok) > self.capacity:
            self._ok.popitem(last=False)
        return True
