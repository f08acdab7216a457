"""Signed messages without a server: canonical strings, every signed field, the replay guard, replies."""

from __future__ import annotations

import dataclasses

import httpx
import pytest

from bmoe.net.errors import UnauthenticResponse
from bmoe.net.http.auth import (
    NONCE_HEADER,
    SIGNATURE_HEADER,
    SIZE_HEADER,
    NonceCache,
    Refusal,
    RequestHead,
    SignedAuth,
    check_request,
    check_response,
    needs_signature,
    read_request_head,
    sign_request,
    sign_response,
)
from tests.net.cluster import identity

ALICE = identity("alice")
MALLORY = identity("mallory")
ENROLLED = {ALICE.address}
NOW = 1_800_000_000


def signed(body: bytes = b"payload", **overrides: object) -> tuple[RequestHead, str]:
    headers = sign_request(ALICE, "PUT", "/blobs", "cid=x", "127.0.0.1:9", body, timestamp=NOW,
                           nonce="ab" * 16)
    parsed = read_request_head("PUT", "/blobs", "cid=x", "127.0.0.1:9", headers)
    assert not isinstance(parsed, Refusal)
    head, signature = parsed
    return dataclasses.replace(head, **overrides), signature  # type: ignore[arg-type]


def test_a_genuine_request_is_accepted() -> None:
    head, signature = signed()
    assert check_request(head, signature, ENROLLED, NOW + 30, 60) is None
    assert head.canonical().startswith(b"BMOE-HTTP-REQUEST-V1\nPUT\n/blobs\ncid=x\n127.0.0.1:9\n")


@pytest.mark.parametrize("field, value", [
    ("method", "POST"), ("path", "/blobs/other"), ("query", "cid=y"), ("host", "127.0.0.1:10"),
    ("body_sha256", "0" * 64), ("timestamp", NOW + 1), ("nonce", "cd" * 16),
])
def test_every_signed_field_matters(field: str, value: object) -> None:
    head, signature = signed(**{field: value})
    refusal = check_request(head, signature, ENROLLED, NOW, 60)
    assert refusal == Refusal(401, "bad_signature", "signature does not match the request and sender")


def test_unknown_key_and_stolen_signature() -> None:
    head, signature = signed()
    assert check_request(head, signature, set(), NOW, 60).status == 403  # type: ignore[union-attr]
    # Mallory replays Alice's signature under her own (enrolled) key: it does not verify.
    forged = dataclasses.replace(head, address=MALLORY.address)
    refusal = check_request(forged, signature, {ALICE.address, MALLORY.address}, NOW, 60)
    assert refusal is not None and refusal.reason == "bad_signature"


def test_timestamp_window() -> None:
    head, signature = signed()
    assert check_request(head, signature, ENROLLED, NOW + 60, 60) is None
    for now in (NOW + 61, NOW - 61):
        refusal = check_request(head, signature, ENROLLED, now, 60)
        assert refusal is not None and (refusal.status, refusal.reason) == (401, "stale_timestamp")


def test_header_parsing() -> None:
    assert read_request_head("GET", "/", "", "h", {}) == Refusal(
        401, "missing_auth", "request is not signed: X-Bmoe-* authentication headers are missing")
    good = sign_request(ALICE, "GET", "/", "", "h", b"")
    for header, bad in [(NONCE_HEADER, "xyz"), (SIGNATURE_HEADER, "00"), ("x-bmoe-timestamp", "-5"),
                        ("x-bmoe-address", "AB" * 32), ("x-bmoe-content-sha256", "")]:
        refusal = read_request_head("GET", "/", "", "h", {**good, header: bad})
        assert isinstance(refusal, Refusal) and refusal.reason == "malformed_auth" and header in refusal.message
    partial = {k: v for k, v in good.items() if k != SIGNATURE_HEADER}
    refusal = read_request_head("GET", "/", "", "h", partial)
    assert isinstance(refusal, Refusal) and SIGNATURE_HEADER in refusal.message


def test_nonce_cache_refuses_replays_and_forgets_after_the_window() -> None:
    cache = NonceCache(window=60)
    assert cache.admit("a", "n1", NOW, NOW) is None
    refusal = cache.admit("a", "n1", NOW, NOW + 1)
    assert refusal is not None and (refusal.status, refusal.reason) == (409, "replayed")
    assert cache.admit("b", "n1", NOW, NOW + 1) is None  # nonces are per sender
    assert cache.admit("a", "n1", NOW, NOW + 61) is None  # forgotten once the timestamp is stale anyway
    assert len(cache) == 1


def test_nonce_cache_is_bounded() -> None:
    cache = NonceCache(window=60, capacity=2)
    assert cache.admit("a", "1", NOW, NOW) is None
    assert cache.admit("a", "2", NOW, NOW) is None
    refusal = cache.admit("a", "3", NOW, NOW)
    assert refusal is not None and (refusal.status, refusal.reason) == (503, "busy")


def test_reply_signatures_bind_status_body_size_and_request() -> None:
    node = identity("node-a")
    headers = {**sign_response(node, 200, "n" * 32, b'{"ok":1}', "12"), SIZE_HEADER: "12"}
    assert check_response(200, headers, b'{"ok":1}', "n" * 32, {node.address}) is None
    assert "not a trusted key" in str(check_response(200, headers, b'{"ok":1}', "n" * 32, {ALICE.address}))
    for status, body, nonce, size in [(201, b'{"ok":1}', "n" * 32, "12"), (200, b'{"ok":2}', "n" * 32, "12"),
                                      (200, b'{"ok":1}', "m" * 32, "12"), (200, b'{"ok":1}', "n" * 32, "13")]:
        problem = check_response(status, {**headers, SIZE_HEADER: size}, body, nonce, {node.address})
        assert problem == "reply signature does not match its status, body and request"
    assert check_response(200, {}, b"", "", {node.address}) == "reply is not signed"


def test_only_blob_bytes_go_unsigned() -> None:
    assert not needs_signature("GET", 200, "application/octet-stream")
    assert needs_signature("GET", 404, "application/json")
    assert needs_signature("HEAD", 200, "application/octet-stream")
    assert needs_signature("PUT", 200, "application/json")


def _echo_node(node_key: str, sign_with: str) -> httpx.MockTransport:
    """A fake server that checks the request signature and signs its reply with ``sign_with``'s key."""
    signer = identity(sign_with)

    def handler(request: httpx.Request) -> httpx.Response:
        path, _, _ = request.url.raw_path.partition(b"?")
        parsed = read_request_head(request.method, path.decode(), request.url.query.decode(),
                                   request.headers["host"], request.headers)
        assert not isinstance(parsed, Refusal)
        assert check_request(*parsed, ENROLLED, parsed[0].timestamp, 60) is None
        body = b'{"echo": true}'
        headers = {"content-type": "application/json",
                   **sign_response(signer, 200, request.headers[NONCE_HEADER], body)}
        return httpx.Response(200, content=body, headers=headers)

    return httpx.MockTransport(handler)


def test_signed_auth_signs_requests_and_checks_replies() -> None:
    node = identity("node-a")
    trusted = {"http://node:80": node.address}
    with httpx.Client(transport=_echo_node("node-a", "node-a"), auth=SignedAuth(ALICE, trusted)) as client:
        assert client.put("http://node/blobs?cid=x", content=b"abc").json() == {"echo": True}
    with httpx.Client(transport=_echo_node("node-a", "mallory"), auth=SignedAuth(ALICE, trusted)) as client, \
            pytest.raises(UnauthenticResponse, match="not a trusted key"):
        client.get("http://node/stats")
    with httpx.Client(transport=_echo_node("node-a", "mallory"), auth=SignedAuth(ALICE, None)) as client:
        assert client.get("http://node/stats").status_code == 200  # no trust given: nothing checked
