"""Storage nodes make a batch durable in the request that writes it (``POST /batch?sync=1``), so a validator's
write-behind store seals without a separate ``POST /sync`` (issue 24: storage off the critical path)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bmoe.net.store.client import HttpBlobStore
from bmoe.storage import cid_of
from bmoe.storage.write_behind import WriteBehindStore
from tests.net.cluster import Cluster


@pytest.fixture(scope="module")
def nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    cluster = Cluster(tmp_path_factory.mktemp("durable"), ("node-a", "node-b"))
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop_all()


def syncs(client: HttpBlobStore) -> list[int]:
    """How many times each node made its objects durable (a ``POST /sync`` or a durable batch)."""
    counts = []
    for node in client.nodes:
        counter = client.node_info(node).get("syncs") or {}
        assert isinstance(counter, dict)
        counts.append(int(counter.get("syncs", 0)))
    return counts


def test_a_durable_batch_is_synced_by_each_node_in_its_own_request(nodes: Cluster) -> None:
    with nodes.client() as client:
        before = syncs(client)
        blobs = [bytes([i]) * (200_000 + i) for i in range(4)]
        cids = client.put_many(blobs, durable=True)
        assert cids == [cid_of(blob) for blob in blobs]
        assert [a - b for a, b in zip(syncs(client), before, strict=True)] == [1, 1]
        for cid in cids:
            assert nodes.holders(cid) == {"node-a", "node-b"}


def test_a_write_behind_store_with_durable_batches_seals_without_a_sync_request(nodes: Cluster) -> None:
    with nodes.client() as client:
        store = WriteBehindStore(client, durable_batches=True)
        cids = [store.put(f"an expert's update {i}".encode() * 1000) for i in range(3)]
        store.sync()
        after_writes = syncs(client)
        assert all(nodes.holders(cid) == {"node-a", "node-b"} for cid in cids)
        store.sync()  # nothing written since: no node is asked to sync
        assert syncs(client) == after_writes
        store.close()
