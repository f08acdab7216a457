"""IpfsStore on a real js-ipfs node: the node's CIDs are bmoe's, every read is verified, a node that lies is
refused and never trusted, and a node that cannot be reached or does not answer is one clear line."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from bmoe.storage import CHUNK_SIZE, CorruptObject, MemoryStore, ObjectNotFound, cid_of
from bmoe.storage.car import check_car, import_objects
from bmoe.storage.errors import IpfsError, IpfsNodeError
from bmoe.storage.ipfs import IpfsStore
from bmoe.storage.ipfs_node import BINARY_ENV, INSTALL_COMMAND, IpfsNode, start_node
from tests.engines.ipfs import ipfs_node, needs_ipfs  # noqa: F401

SIZES = {"empty": 0, "1 KB": 1000, "one chunk": CHUNK_SIZE, "one chunk + 1": CHUNK_SIZE + 1, "~3 MB": 3_000_000}


@pytest.fixture
def store(ipfs_node: IpfsNode) -> Iterator[IpfsStore]:  # noqa: F811
    with IpfsStore(ipfs_node.api_url, timeout=10) as opened:
        yield opened


@pytest.mark.parametrize("size", SIZES.values(), ids=SIZES.keys())
def test_put_get_has_delete_list_round_trip_with_the_cids_bmoe_computes(store: IpfsStore, size: int) -> None:
    data = os.urandom(size)
    cid = store.put(data)
    assert cid == cid_of(data)
    assert store.get(cid) == data
    assert store.has(cid) and cid in set(store.cids())
    assert store.put(data) == cid  # idempotent
    assert store.delete(cid) is True
    assert not store.has(cid) and cid not in set(store.cids())
    with pytest.raises(ObjectNotFound):
        store.get(cid)
    assert store.delete(cid) is False


def test_a_car_the_node_exports_imports_here(store: IpfsStore, ipfs_node: IpfsNode, tmp_path: Path) -> None:  # noqa: F811
    data = os.urandom(3 * CHUNK_SIZE + 11)
    cid = store.put(data)
    reply = httpx.post(f"{ipfs_node.api_url}/api/v0/dag/export", params={"arg": cid}, timeout=30)
    assert reply.status_code == 200, reply.text
    (tmp_path / "node.car").write_bytes(reply.content)
    copy = MemoryStore()
    assert import_objects(check_car(tmp_path / "node.car"), copy) == [cid]
    assert copy.get(cid) == data


def test_a_missing_object_is_not_found_at_once_not_after_the_timeout(store: IpfsStore) -> None:
    started = time.monotonic()
    with pytest.raises(ObjectNotFound, match="not pinned"):
        store.get(cid_of(b"never stored"))
    assert time.monotonic() - started < 2


def _lying(node: IpfsNode, edit: Callable[[str, bytes], bytes]) -> httpx.MockTransport:
    """A proxy between the store and the real node that passes every answer through ``edit(command, body)``."""
    upstream = httpx.Client(base_url=node.api_url, timeout=10)

    def handle(request: httpx.Request) -> httpx.Response:
        reply = upstream.request(request.method, request.url.path, params=request.url.params,
                                 content=request.content, headers={"content-type": request.headers["content-type"]}
                                 if "content-type" in request.headers else {})
        command = request.url.path.removeprefix("/api/v0/")
        return httpx.Response(reply.status_code, content=edit(command, reply.content))

    return httpx.MockTransport(handle)


def _flip_cat(command: str, body: bytes) -> bytes:
    if command != "cat" or not body:
        return body
    return bytes([body[0] ^ 1]) + body[1:]


@pytest.mark.parametrize("size", [1000, 3 * CHUNK_SIZE + 5])
def test_a_node_that_flips_a_byte_in_cat_is_refused_every_time(ipfs_node: IpfsNode, size: int) -> None:  # noqa: F811
    data = os.urandom(size)
    with IpfsStore(ipfs_node.api_url) as honest:
        cid = honest.put(data)
    with IpfsStore(ipfs_node.api_url, transport=_lying(ipfs_node, _flip_cat)) as liar:
        for _ in range(2):  # refused, and still refused: nothing from a lying answer is kept
            with pytest.raises(CorruptObject, match=f"{ipfs_node.api_url} answered bytes for {cid} that do not match"):
                liar.get(cid)
        assert liar.verify(cid) is False
    with IpfsStore(ipfs_node.api_url) as honest:
        assert honest.get(cid) == data


def test_verified_objects_are_served_again_without_the_node_until_deleted(ipfs_node: IpfsNode) -> None:  # noqa: F811
    data = os.urandom(5000)
    with IpfsStore(ipfs_node.api_url) as store:
        cid = store.put(data)
    asked: list[str] = []

    def count(command: str, body: bytes) -> bytes:
        asked.append(command)
        return body

    with IpfsStore(ipfs_node.api_url, transport=_lying(ipfs_node, count)) as store:
        assert store.get(cid) == data and asked == ["pin/ls", "cat"]  # read once, verified
        assert store.get(cid) == data and asked == ["pin/ls", "cat"]  # then served from the cache
        assert store.verify(cid) and asked[-1] == "cat"  # verify always reads the node's copy
        assert store.delete(cid)
        with pytest.raises(ObjectNotFound):
            store.get(cid)
    with IpfsStore(ipfs_node.api_url, cache_bytes=0) as store:
        assert not store.has(cid)


def test_a_node_that_answers_another_cid_on_add_is_refused(ipfs_node: IpfsNode) -> None:  # noqa: F811
    other = cid_of(b"something else")

    def swap_cid(command: str, body: bytes) -> bytes:
        return body.replace(b'"Hash":"', b'"Hash":"' + other.encode() + b'","Was":"') if command == "add" else body

    data = os.urandom(2000)
    with IpfsStore(ipfs_node.api_url, transport=_lying(ipfs_node, swap_cid)) as liar, \
            pytest.raises(CorruptObject, match=f"as '{other}', but their CID is {cid_of(data)}"):
        liar.put(data)


def test_a_node_answering_the_right_cid_in_base58_is_accepted(ipfs_node: IpfsNode) -> None:  # noqa: F811
    from multiformats import CID

    data = os.urandom(3000)
    base58 = str(CID.decode(cid_of(data)).set(base="base58btc"))

    def rebase(command: str, body: bytes) -> bytes:
        return body.replace(cid_of(data).encode(), base58.encode()) if command == "add" else body

    with IpfsStore(ipfs_node.api_url, transport=_lying(ipfs_node, rebase)) as store:
        assert store.put(data) == cid_of(data)


def test_an_unreachable_api_is_one_line_naming_the_url() -> None:
    with IpfsStore("http://127.0.0.1:1", timeout=2) as store, pytest.raises(IpfsError) as caught:
        store.get(cid_of(b"x"))
    message = str(caught.value)
    assert "http://127.0.0.1:1" in message and "unreachable" in message and "\n" not in message


def test_a_node_that_never_answers_times_out_in_one_line() -> None:
    with socket.socket() as silent:  # accepts connections (the kernel's backlog), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(4)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        started = time.monotonic()
        with IpfsStore(url, timeout=0.5) as store, pytest.raises(IpfsError, match=f"{url}: .*timed out"):
            store.put(b"x")
        assert time.monotonic() - started < 5


def test_an_api_that_is_not_an_http_url_is_refused() -> None:
    with pytest.raises(IpfsError, match="not an http"):
        IpfsStore("127.0.0.1:5001")


def test_a_missing_engine_names_the_npm_command(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(BINARY_ENV, str(tmp_path / "no-jsipfs"))
    with pytest.raises(IpfsNodeError, match=f"not installed .*`{INSTALL_COMMAND}`"):
        start_node(tmp_path / "repo")
    assert not (tmp_path / "repo").exists()


@needs_ipfs
def test_a_taken_api_port_is_refused_before_anything_is_made(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        with pytest.raises(IpfsNodeError, match=f"127.0.0.1:{port}: Address already in use"):
            start_node(tmp_path / "repo", api_port=port)
    assert not (tmp_path / "repo").exists()


@needs_ipfs
def test_a_kept_repository_restarts_with_its_objects_on_new_ports(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    with start_node(repo) as first, IpfsStore(first.api_url) as store:
        cid = store.put(b"kept across restarts")
    with start_node(repo) as second, IpfsStore(second.api_url) as store:
        assert store.get(cid) == b"kept across restarts"
    assert first.process.returncode is not None and second.process.returncode is not None
    assert repo.is_dir()
