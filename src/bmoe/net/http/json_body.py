"""Parsing a JSON request body at the HTTP boundary: bounded nesting, no NaN or Infinity.

Owns :func:`read_json`, which every JSON-over-HTTP route of the services uses. Python's parser
recurses once per nesting level, so a body of a hundred thousand ``[`` would otherwise escape as a
``RecursionError`` (a 500); here the depth is measured first, without parsing, and a body deeper
than :data:`MAX_JSON_DEPTH` is a 400 ``json_too_deep``, never parsed. ``NaN`` and ``Infinity``,
which Python's parser accepts but JSON does not, are a 400 ``malformed_json``.
"""

from __future__ import annotations

import json
import re

from bmoe.net.http.auth import Refusal

MAX_JSON_DEPTH = 32  # the deepest honest body (an answer carrying a transaction) nests 6 levels

_ESCAPE = re.compile(rb"\\.", re.DOTALL)
_STRING = re.compile(rb'"[^"]*"')
_BRACKETS_ONLY = bytes(b for b in range(256) if b not in b'"[]{}')


def json_depth(body: bytes, limit: int = MAX_JSON_DEPTH) -> int:
    """The deepest nesting of arrays and objects in ``body`` (brackets inside strings do not count),
    or ``limit + 1`` once it is deeper than ``limit``.

    Linear passes at C speed, whatever the body: drop escapes, keep only quotes and brackets, drop
    strings, then peel the innermost bracket pairs once per level, at most ``limit`` times.
    """
    shape = _ESCAPE.sub(b"", body).translate(None, _BRACKETS_ONLY)
    shape = _STRING.sub(b"", shape).replace(b'"', b"").replace(b"{", b"[").replace(b"}", b"]")
    for depth in range(limit + 1):
        if b"[]" not in shape:
            return depth  # empty, or only unbalanced brackets left: the JSON parser names those
        shape = shape.replace(b"[]", b"")
    return limit + 1


def _no_constants(name: str) -> object:
    raise ValueError(f"{name} is not JSON")


def read_json(body: bytes, limit: int = MAX_JSON_DEPTH) -> object | Refusal:
    """The parsed body, or the refusal (400) that says why it is not acceptable JSON."""
    if json_depth(body, limit) > limit:
        return Refusal(400, "json_too_deep", f"body nests JSON deeper than {limit} levels")
    try:
        return json.loads(body, parse_constant=_no_constants)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        return Refusal(400, "malformed_json", f"body is not JSON: {exc}")
