"""``HttpBlobStore``: the shared ``BlobStore`` behaviour over real nodes, and distrust of what nodes send."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx
import pytest

from bmoe.net.errors import DeleteRefused, RemoteStoreError
from bmoe.net.http.auth import SignedAuth
from bmoe.net.store.client import HttpBlobStore
from bmoe.net.store.placement import rendezvous_order
from bmoe.storage import CorruptObject, ObjectNotFound, cid_of
from tests.net.cluster import Cluster, identity
from tests.storage import test_storage_backends as contract

CLIENT = identity("client")

# --- the BlobStore contract, on two real nodes (replication 2, deletion allowed) ---------------


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    cluster = Cluster(tmp_path_factory.mktemp("pair"), ("node-a", "node-b"), extra_args=("--allow-delete",))
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop_all()


@pytest.fixture
def store(pair: Cluster) -> Iterator[HttpBlobStore]:
    pair.ensure_running()
    pair.wipe()
    with pair.client() as client:
        yield client


@pytest.mark.parametrize("name", contract.BLOBS)
def test_round_trip(store: HttpBlobStore, name: str, pair: Cluster) -> None:
    contract.test_round_trip(store, name)
    assert pair.holders(cid_of(contract.BLOBS[name])) == {"node-a", "node-b"}


def test_put_many_writes_each_blob_on_its_nodes_side_by_side(store: HttpBlobStore, pair: Cluster) -> None:
    blobs = [bytes([i]) * (300_000 + i) for i in range(6)]
    cids = store.put_many(blobs)
    assert cids == [cid_of(blob) for blob in blobs]
    store.sync()
    for cid, blob in zip(cids, blobs, strict=True):
        assert pair.holders(cid) == {"node-a", "node-b"} and store.get(cid) == blob
    stats = [store.node_info(node) for node in store.nodes]
    assert all(s["blobs"]["stored"] >= len(blobs) for s in stats), stats  # type: ignore[index]


def test_put_is_idempotent_and_accepts_bytes_like(store: HttpBlobStore) -> None:
    contract.test_put_is_idempotent_and_accepts_bytes_like(store)


def test_listing(store: HttpBlobStore) -> None:
    contract.test_listing(store)


def test_listing_pages(pair: Cluster, store: HttpBlobStore) -> None:
    cids = {store.put(f"blob {i}".encode()) for i in range(7)}
    with pair.client(list_page=2) as paged:
        assert list(paged.cids()) == sorted(cids)


def test_missing_object(store: HttpBlobStore) -> None:
    contract.test_missing_object(store)


def test_delete(store: HttpBlobStore, pair: Cluster) -> None:
    contract.test_delete(store)
    assert pair.holders(cid_of(b"drop")) == set()


@pytest.mark.parametrize("bad", ["", "nope", contract.CIDV0, "../../etc/passwd"])
def test_malformed_cids_are_rejected(store: HttpBlobStore, bad: str) -> None:
    contract.test_malformed_cids_are_rejected(store, bad)


def test_alternative_cid_encodings_address_the_same_object(store: HttpBlobStore) -> None:
    contract.test_alternative_cid_encodings_address_the_same_object(store)


def test_ten_mib_round_trip_is_fast(store: HttpBlobStore) -> None:
    contract.test_ten_mib_round_trip_is_fast(store)


def test_size_of_stored_objects(store: HttpBlobStore) -> None:
    cid = store.put(b"x" * 300_000)
    assert store.size(cid) == 300_000
    with pytest.raises(ObjectNotFound):
        store.size(cid_of(b"absent"))


def tamper_everywhere(pair: Cluster, cid: str, edit: Callable[[bytes], bytes]) -> None:
    for name in pair.holders(cid):
        path = pair.data_dir(name) / cid[-3:-1] / cid
        path.write_bytes(edit(path.read_bytes()))


@pytest.mark.parametrize("name", ["small", "one chunk", "multi chunk"])
def test_flipped_byte_is_detected(store: HttpBlobStore, pair: Cluster, name: str) -> None:
    data = contract.BLOBS[name]
    cid = store.put(data)
    other = store.put(b"untouched neighbour")
    tamper_everywhere(pair, cid, contract.flip_first_byte)
    assert store.has(cid)
    assert not store.verify(cid)
    with pytest.raises(CorruptObject, match=cid) as info:
        store.get(cid)
    assert info.value.cid == cid
    assert store.get(other) == b"untouched neighbour"
    assert store.put(data) == cid  # putting the genuine bytes again repairs both copies
    assert store.verify(cid) and store.get(cid) == data
    with httpx.Client(auth=SignedAuth(CLIENT)) as single:
        for url in pair.urls:  # each node now serves the genuine bytes on its own
            assert single.get(f"{url}/blobs/{cid}", params={"local": "1"}).content == data


@pytest.mark.parametrize("edit", [lambda d: d[:-1], lambda d: d + b"\x00", lambda d: b"", lambda d: b"hello world\n"],
                         ids=["truncated", "appended", "emptied", "swapped"])
def test_other_tampering_is_detected(store: HttpBlobStore, pair: Cluster, edit: Callable[[bytes], bytes]) -> None:
    cid = store.put(contract.BLOBS["multi chunk"])
    tamper_everywhere(pair, cid, edit)
    assert not store.verify(cid)
    with pytest.raises(CorruptObject, match=cid):
        store.get(cid)


# --- distrust of nodes, with fake nodes (httpx.MockTransport) ---------------------------------
NODES = ["http://node-a:8001", "http://node-b:8002"]


def fake_nodes(handlers: dict[str, Callable[[httpx.Request], httpx.Response]], seen: list[str]) -> httpx.MockTransport:
    def route(request: httpx.Request) -> httpx.Response:
        origin = f"http://{request.url.host}:{request.url.port}"
        seen.append(f"{request.method} {origin}")
        return handlers[origin](request)

    return httpx.MockTransport(route)


def serve_bytes(data: bytes) -> Callable[[httpx.Request], httpx.Response]:
    return lambda request: httpx.Response(200, content=data, headers={"content-type": "application/octet-stream"})


def refuse_connection(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("connection refused", request=request)


def test_a_lying_node_is_caught_and_skipped() -> None:
    data = b"the genuine expert weights"
    cid = cid_of(data)
    liar, honest = rendezvous_order(cid, NODES)  # the liar is asked first
    seen: list[str] = []
    transport = fake_nodes({liar: serve_bytes(b"manipulated weights"), honest: serve_bytes(data)}, seen)
    with HttpBlobStore(NODES, CLIENT, transport=transport) as store:
        assert store.get(cid) == data
    assert seen == [f"GET {liar}", f"GET {honest}"]
    only_liar = fake_nodes({liar: serve_bytes(b"manipulated weights"), honest: serve_bytes(b"also wrong")}, [])
    with HttpBlobStore(NODES, CLIENT, transport=only_liar) as store, pytest.raises(CorruptObject, match=cid):
        store.get(cid)


def test_unreachable_nodes_are_retried_then_skipped() -> None:
    data = b"replicated"
    cid = cid_of(data)
    down, up = rendezvous_order(cid, NODES)
    seen: list[str] = []
    transport = fake_nodes({down: refuse_connection, up: serve_bytes(data)}, seen)
    with HttpBlobStore(NODES, CLIENT, transport=transport, retries=2, retry_backoff=0.001) as store:
        assert store.get(cid) == data
    assert seen == [f"GET {down}"] * 3 + [f"GET {up}"]
    everything_down = fake_nodes(dict.fromkeys(NODES, refuse_connection), [])
    with HttpBlobStore(NODES, CLIENT, transport=everything_down, retries=0) as store:
        with pytest.raises(RemoteStoreError, match="cannot get") as info:
            store.get(cid)
        assert set(info.value.failures) == set(NODES)
        with pytest.raises(RemoteStoreError, match="cannot store"):
            store.put(data)
        with pytest.raises(RemoteStoreError):
            store.has(cid)


def test_refused_deletion_and_oversized_blobs() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        return httpx.Response(403, json={"error": "this node does not delete objects", "reason": "delete_disabled"})

    transport = fake_nodes(dict.fromkeys(NODES, refuse), [])
    with HttpBlobStore(NODES, CLIENT, transport=transport) as store, pytest.raises(DeleteRefused, match="refuses"):
        store.delete(cid_of(b"evidence"))
    with HttpBlobStore(NODES, CLIENT, max_body=10) as store, pytest.raises(ValueError, match="larger than"):
        store.put(b"x" * 11)


def test_every_node_needs_an_address_when_replies_are_checked() -> None:
    with pytest.raises(ValueError, match="no address for"):
        HttpBlobStore(NODES, CLIENT, node_addresses={NODES[0]: identity("node-a").address})
