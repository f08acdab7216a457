"""Canonical JSON encoding and its strict inverse."""

from __future__ import annotations

import hashlib
import math

import pytest

from bmoe.ledger.encoding import canonical_json, decode_canonical_json, is_hex64, sha256_hex


def test_canonical_json_exact_bytes() -> None:
    obj = {"b": [1, 2.5, None, True], "a": {"z": "é", "y": ""}}
    assert canonical_json(obj) == b'{"a":{"y":"","z":"\\u00e9"},"b":[1,2.5,null,true]}'


def test_canonical_json_independent_of_insertion_order() -> None:
    one = {"x": 1, "y": {"p": [1, {"q": 2, "r": 3}]}}
    two = {"y": {"p": [1, {"r": 3, "q": 2}]}, "x": 1}
    assert canonical_json(one) == canonical_json(two)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, {"a": [1.0, math.nan]}])
def test_canonical_json_rejects_nan_and_infinity(bad: object) -> None:
    with pytest.raises(ValueError, match="NaN and Infinity"):
        canonical_json(bad)


def test_canonical_json_rejects_non_string_keys() -> None:
    with pytest.raises(TypeError, match="non-string key"):
        canonical_json({"a": {1: "x"}})


def test_canonical_json_rejects_non_json_types() -> None:
    with pytest.raises(TypeError, match="not JSON-serialisable"):
        canonical_json({"a": b"bytes"})


def test_sha256_hex_matches_hashlib() -> None:
    assert sha256_hex(b"abc") == hashlib.sha256(b"abc").hexdigest()
    assert sha256_hex(b"") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def test_decode_round_trip() -> None:
    obj = {"k": [1, -2, 0.1, "s\u00e9", {"n": None}]}
    assert decode_canonical_json(canonical_json(obj)) == obj


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b'{"b":1,"a":2}', "canonical"),
        (b'{"a": 1}', "canonical"),
        (b'{"a":1,"a":1}', "duplicate key"),
        (b'{"a":NaN}', "NaN"),
        (b'{"a":Infinity}', "Infinity"),
        (b'{"a":1e999}', "NaN and Infinity"),
        (b'{"a":1.0E2}', "canonical"),
        (b'{"a":"\xc3\xa9"}', "ASCII"),
        (b'{"a":', "valid JSON"),
    ],
)
def test_decode_rejects_non_canonical(data: bytes, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        decode_canonical_json(data)


def test_is_hex64() -> None:
    assert is_hex64("ab" * 32)
    assert not is_hex64("AB" * 32)
    assert not is_hex64("ab" * 31)
    assert not is_hex64(None)
