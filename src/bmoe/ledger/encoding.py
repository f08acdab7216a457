"""Canonical byte encoding and hashing for the ledger.

Owns the one JSON encoding every hash and signature in the ledger is computed over:
sorted keys, no whitespace, ASCII only, no NaN/Infinity, string keys only.  Also owns
the strict inverse used when reading bytes from disk or the network.
"""

from __future__ import annotations

import json
import re
from typing import Any

from bmoe.storage.digest import sha256_hex as sha256_hex  # the ledger names bytes by storage's digest

_HEX64 = re.compile(r"[0-9a-f]{64}")


def _string_keys(obj: Any) -> bool:
    """Whether every mapping key in ``obj`` is a string: the fast walk. False when unsure too (deeper than the
    recursion limit, or circular), so that :func:`_check_keys` decides: it names the first bad key's path, and
    meets a too deep or circular value with its RecursionError, as before."""
    if not isinstance(obj, _CONTAINERS):
        return True
    try:
        return _keys_below(obj)
    except RecursionError:
        return False


def _keys_below(obj: dict[Any, Any] | list[Any] | tuple[Any, ...]) -> bool:
    """:func:`_string_keys` of a container, recursing only into the containers it holds."""
    if isinstance(obj, dict):
        for key, value in obj.items():
            if not isinstance(key, str):
                return False
            if isinstance(value, _CONTAINERS) and not _keys_below(value):
                return False
        return True
    return all(_keys_below(value) for value in obj if isinstance(value, _CONTAINERS))


_CONTAINERS = (dict, list, tuple)


def _check_keys(obj: Any, path: str) -> None:
    """Reject non-string mapping keys (json would silently stringify them), naming the first one's path."""
    if isinstance(obj, dict):
        for key, value in obj.items():
            if not isinstance(key, str):
                raise TypeError(f"canonical_json: non-string key {key!r} at {path or '$'}")
            _check_keys(value, f"{path}.{key}")
    elif isinstance(obj, list | tuple):
        for i, value in enumerate(obj):
            _check_keys(value, f"{path}[{i}]")


def canonical_json(obj: Any) -> bytes:
    """Encode ``obj`` as canonical JSON bytes.

    Sorted keys, separators ``(",", ":")``, ``ensure_ascii=True``.  NaN and
    ±Infinity raise ``ValueError``; non-string dict keys and non-JSON types raise
    ``TypeError``.  Tuples encode as lists.
    """
    if not _string_keys(obj):
        _check_keys(obj, "")
    try:
        text = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)
    except ValueError as exc:
        raise ValueError(f"canonical_json: NaN and Infinity are not allowed ({exc})") from None
    except TypeError as exc:
        raise TypeError(f"canonical_json: value is not JSON-serialisable ({exc})") from None
    return text.encode("ascii")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed")


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key {key!r}")
        out[key] = value
    return out


def decode_canonical_json(data: bytes) -> Any:
    """Strict inverse of :func:`canonical_json`.

    Raises ``ValueError`` (with a reason) unless ``data`` is exactly the canonical
    encoding of the value it decodes to: so one value has one accepted encoding.
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise ValueError(f"expected bytes, got {type(data).__name__}")
    raw = bytes(data)
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError:
        raise ValueError("not ASCII") from None
    try:
        obj = json.loads(text, parse_constant=_reject_constant, object_pairs_hook=_no_duplicate_keys)
    except ValueError as exc:  # json.JSONDecodeError is a ValueError
        raise ValueError(f"not valid JSON ({exc})") from None
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None
    try:
        again = canonical_json(obj)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None
    except (TypeError, ValueError) as exc:
        raise ValueError(str(exc)) from None
    if again != raw:
        raise ValueError("not in canonical JSON form")
    return obj


def is_hex64(value: object) -> bool:
    """True for a 64-char lower-case hex string (a SHA-256 digest or Ed25519 key)."""
    return isinstance(value, str) and _HEX64.fullmatch(value) is not None
