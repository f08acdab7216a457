"""JSON bodies at the HTTP boundary: depth is measured without parsing (brackets in strings do not count),
anything deeper than the bound is a 400 ``json_too_deep``, and NaN or Infinity is a 400 ``malformed_json``."""

from __future__ import annotations

import json
import time

import pytest

from bmoe.net.http.auth import Refusal
from bmoe.net.http.json_body import MAX_JSON_DEPTH, json_depth, read_json


@pytest.mark.parametrize("value", [
    1, "[[[{", [], {}, [[1, [2]], {"a": {"b": "]]]]"}}], {"k": "\\\"[[[\\\\"}, [[[[[[]]]]]],
    {"tx": {"payload": {"decisions": [{"expert": 0, "digest": None}]}}},
])
def test_the_measured_depth_is_the_real_nesting(value: object) -> None:
    def depth(v: object) -> int:
        if isinstance(v, dict):
            return 1 + max(map(depth, v.values()), default=0)
        if isinstance(v, list):
            return 1 + max(map(depth, v), default=0)
        return 0

    body = json.dumps(value).encode()
    assert json_depth(body) == depth(value)
    assert read_json(body) == value


@pytest.mark.parametrize("opener, closer", [(b"[", b"]"), (b'{"a":', b"}"), (b"[1,", b"]")])
@pytest.mark.parametrize("levels", [MAX_JSON_DEPTH + 1, 1000, 100_000])
def test_deep_bodies_are_refused_by_name_without_parsing(opener: bytes, closer: bytes, levels: int) -> None:
    body = opener * levels + b"0" + closer * levels
    started = time.perf_counter()
    refusal = read_json(body)
    assert isinstance(refusal, Refusal) and (refusal.status, refusal.reason) == (400, "json_too_deep")
    assert time.perf_counter() - started < 2.0


def test_the_bound_itself_is_accepted() -> None:
    body = b"[" * MAX_JSON_DEPTH + b"]" * MAX_JSON_DEPTH
    assert not isinstance(read_json(body), Refusal)


@pytest.mark.parametrize("body", [b"[NaN]", b'{"loss": Infinity}', b"-Infinity", b"{not json", b"\xff\xfe", b""])
def test_non_json_and_non_finite_constants_are_malformed(body: bytes) -> None:
    refusal = read_json(body)
    assert isinstance(refusal, Refusal) and (refusal.status, refusal.reason) == (400, "malformed_json")
