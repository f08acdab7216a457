"""One storage node served from a thread on 127.0.0.1: routes, refusals, counters, signed replies."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from starlette.types import ASGIApp

from bmoe.net.frames import FRAME_MEDIA_TYPE, encode_frame
from bmoe.net.http.auth import (
    NONCE_HEADER,
    SIGNATURE_HEADER,
    SIZE_HEADER,
    SignedAuth,
    check_response,
    is_nonce,
    sign_request,
)
from bmoe.net.store.service import NodeConfig, StoreNode
from bmoe.storage import cid_of
from tests.net.cluster import identity, serving

NODE = identity("node-a")
ALICE = identity("alice")
LIMIT = 64 * 1024


def make_node(data_dir: Path, url: str, **settings: object) -> StoreNode:
    enrolled = {"node-a": NODE.address, "alice": ALICE.address}
    return StoreNode(NodeConfig(data_dir=data_dir, identity=NODE, enrolled=enrolled, url=url,  # type: ignore[arg-type]
                                replication=1, **settings))


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[StoreNode, str]]:
    """A node with a small body limit, served on a real loopback port."""
    nodes: list[StoreNode] = []

    def make_app(url: str) -> ASGIApp:
        nodes.append(make_node(tmp_path / "data", url, max_body=LIMIT))
        return nodes[0].app()

    with serving(make_app) as url:
        yield nodes[0], url


@pytest.fixture
def node(served: tuple[StoreNode, str]) -> StoreNode:
    return served[0]


@pytest.fixture
def url(served: tuple[StoreNode, str]) -> str:
    return served[1]


@pytest.fixture
def client(url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=url, auth=SignedAuth(ALICE, trusted={NODE.address}), timeout=10) as signed:
        yield signed


@pytest.fixture
def raw(url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=url, timeout=10) as unsigned:
        yield unsigned


def host(url: str) -> str:
    return url.removeprefix("http://")


def errors(client: httpx.Client) -> dict[str, int]:
    return dict(client.get("/stats").json().get("errors", {}))


def assert_refused(reply: httpx.Response, status: int, reason: str) -> None:
    assert reply.status_code == status, reply.text
    body = reply.json()
    assert body["reason"] == reason and body["error"], body
    # refusals are signed replies too (bound to the request's nonce when it had a valid one)
    nonce = reply.request.headers.get(NONCE_HEADER, "")
    nonce = nonce if is_nonce(nonce) else ""
    assert check_response(status, reply.headers, reply.content, nonce, {NODE.address}) is None


def test_put_get_head_list(client: httpx.Client, node: StoreNode) -> None:
    blobs = [b"", b"hello world\n", bytes(range(256)) * 100]
    cids = []
    for blob in blobs:
        reply = client.put("/blobs", params={"cid": cid_of(blob)}, content=blob)
        assert reply.json() == {"cid": cid_of(blob), "size": len(blob), "replicas": [str(client.base_url).rstrip("/")]}
        cids.append(reply.json()["cid"])
    for blob, cid in zip(blobs, cids, strict=True):
        got = client.get(f"/blobs/{cid}")
        assert got.content == blob and got.headers["content-type"] == "application/octet-stream"
        assert SIGNATURE_HEADER not in got.headers  # the CID authenticates blob bytes
        head = client.head(f"/blobs/{cid}")
        assert head.status_code == 200 and head.headers[SIZE_HEADER] == str(len(blob))
        assert SIGNATURE_HEADER in head.headers
    assert node.store.get(cids[1]) == b"hello world\n"
    everything = client.get("/blobs").json()
    assert everything == {"cids": sorted(cids), "next": None}
    first = client.get("/blobs", params={"limit": 2}).json()
    rest = client.get("/blobs", params={"limit": 2, "after": first["next"]}).json()
    assert first["cids"] + rest["cids"] == sorted(cids) and rest["next"] is None
    assert client.get(f"/blobs/{cid_of(b'absent')}").status_code == 404
    assert client.head(f"/blobs/{cid_of(b'absent')}").status_code == 404


def test_bad_cids_and_mismatches(client: httpx.Client, node: StoreNode) -> None:
    assert_refused(client.get("/blobs/not-a-cid"), 400, "invalid_cid")
    assert client.head("/blobs/Qm123").status_code == 400  # a HEAD reply has no body; its status is signed
    assert_refused(client.put("/blobs", params={"cid": "nope"}, content=b"x"), 400, "invalid_cid")
    reply = client.put("/blobs", params={"cid": cid_of(b"y")}, content=b"x")
    assert_refused(reply, 400, "cid_mismatch")
    assert cid_of(b"x") in reply.json()["error"] and reply.json()["cid"] == cid_of(b"y")
    assert list(node.store.cids()) == []
    assert_refused(client.get("/blobs", params={"limit": 0}), 400, "bad_query")
    assert_refused(client.get("/nowhere"), 404, "no_route")
    assert_refused(client.post("/blobs", content=b""), 405, "method_not_allowed")
    assert errors(client) == {"invalid_cid": 3, "cid_mismatch": 1, "bad_query": 1, "no_route": 1,
                              "method_not_allowed": 1}


def test_a_corrupt_copy_is_never_served(client: httpx.Client, node: StoreNode) -> None:
    cid = client.put("/blobs", content=b"precious bytes").json()["cid"]
    node.store.path_of(cid).write_bytes(b"PRECIOUS bytes")
    reply = client.get(f"/blobs/{cid}")
    assert_refused(reply, 500, "corrupt")
    assert reply.json()["cid"] == cid and cid in reply.json()["error"]
    assert b"PRECIOUS" not in reply.content
    assert client.put("/blobs", content=b"precious bytes").status_code == 200  # a put repairs it
    assert client.get(f"/blobs/{cid}").content == b"precious bytes"


def test_delete_is_refused_unless_allowed(client: httpx.Client, tmp_path: Path) -> None:
    cid = client.put("/blobs", content=b"evidence").json()["cid"]
    assert_refused(client.delete(f"/blobs/{cid}"), 403, "delete_disabled")
    assert client.get(f"/blobs/{cid}").content == b"evidence"
    with serving(lambda url: make_node(tmp_path / "other", url, allow_delete=True).app()) as lenient, \
            httpx.Client(base_url=lenient, auth=SignedAuth(ALICE)) as other:
        cid = other.put("/blobs", content=b"scratch").json()["cid"]
        assert other.delete(f"/blobs/{cid}").json() == {"cid": cid, "deleted": True}
        assert other.delete(f"/blobs/{cid}").json() == {"cid": cid, "deleted": False}


def test_authentication_refusals_are_counted_and_the_node_keeps_serving(client: httpx.Client, raw: httpx.Client,
                                                                        url: str) -> None:
    assert_refused(raw.get("/stats"), 401, "missing_auth")
    assert_refused(raw.get("/stats", headers={NONCE_HEADER: "x"}), 401, "malformed_auth")
    assert_refused(raw.put("/blobs", content=b"spam", auth=SignedAuth(identity("mallory"))), 403, "unknown_key")

    headers = sign_request(ALICE, "GET", "/stats", "", host(url), b"")
    assert raw.get("/stats", headers=headers).status_code == 200
    assert_refused(raw.get("/stats", headers=headers), 409, "replayed")
    moved = sign_request(ALICE, "GET", "/stats", "", host(url), b"")
    assert_refused(raw.get("/blobs", headers=moved), 401, "bad_signature")  # signed for another path
    stale = sign_request(ALICE, "GET", "/stats", "", host(url), b"", timestamp=1_000_000_000)
    assert_refused(raw.get("/stats", headers=stale), 401, "stale_timestamp")
    swapped = sign_request(ALICE, "PUT", "/blobs", "", host(url), b"signed body")
    assert_refused(raw.put("/blobs", headers=swapped, content=b"other body"), 401, "body_mismatch")

    assert_refused(client.put("/blobs", content=b"x" * (LIMIT + 1)), 413, "too_large")  # Content-Length
    chunks = iter([b"x" * 40_000, b"x" * 40_000])
    reply = client.put("/blobs", content=chunks)  # chunked: no Content-Length, counted as it streams
    assert "content-length" not in reply.request.headers
    assert_refused(reply, 413, "too_large")
    assert client.put("/blobs", content=b"x" * LIMIT).status_code == 200  # the limit itself is fine

    stats = client.get("/stats").json()
    assert stats["errors"] == {"missing_auth": 1, "malformed_auth": 1, "unknown_key": 1, "replayed": 1,
                               "bad_signature": 1, "stale_timestamp": 1, "body_mismatch": 1, "too_large": 2}
    assert stats["requests"]["refused"] == 9
    assert stats["objects"] == 1


def test_health_is_public_and_signed_for_the_callers_nonce(raw: httpx.Client, url: str) -> None:
    reply = raw.get("/health", headers={NONCE_HEADER: "ab" * 16})
    assert reply.json() == {"status": "ok", "name": "node-a", "address": NODE.address, "url": url, "replication": 1}
    assert check_response(200, reply.headers, reply.content, "ab" * 16, {NODE.address}) is None
    assert check_response(200, reply.headers, reply.content, "cd" * 16, {NODE.address}) is not None


def test_node_config_is_checked(tmp_path: Path) -> None:
    base = {"data_dir": tmp_path, "identity": NODE, "enrolled": {}, "url": "http://127.0.0.1:1"}
    with pytest.raises(ValueError, match="needs at least 1 peer"):
        NodeConfig(**base, replication=2)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="names this node itself"):
        NodeConfig(**base, peers=("http://127.0.0.1:1/",))  # type: ignore[arg-type]
    config = NodeConfig(**base, peers=("http://127.0.0.1:2/", "http://127.0.0.1:2"), replication=2)  # type: ignore[arg-type]
    assert config.peers == ("http://127.0.0.1:2",)


def test_a_batch_is_stored_whole_and_a_bad_one_refused(client: httpx.Client, node: StoreNode) -> None:
    blobs = {cid_of(blob): blob for blob in (b"result", b"weights" * 1000)}
    reply = client.post("/batch", content=encode_frame({}, blobs), headers={"content-type": FRAME_MEDIA_TYPE})
    assert reply.status_code == 200 and reply.json() == {"cids": list(blobs), "size": sum(map(len, blobs.values()))}
    for cid, blob in blobs.items():
        assert client.get(f"/blobs/{cid}").content == blob
    frame = encode_frame({}, {cid_of(b"honest"): b"honest"}).replace(b"honest", b"forged")
    assert_refused(client.post("/batch", content=frame), 400, "malformed_frame")
    assert not node.store.has(cid_of(b"forged")) and not node.store.has(cid_of(b"honest"))
    synced = client.post("/sync")
    assert synced.status_code == 200 and synced.json()["synced"] >= 0
