"""Edges answering over frames, as ``EdgeLoop`` does without sockets: each reads its work item with
``NetworkEdges.frame`` (the item and the objects pushed to it: its routed rows, encoded when it reads the item,
and the weights it lacks), computes on them, and answers with the objects its item asks it to carry. The chain is
the in-process run's, block for block."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from bmoe.data import Dataset
from bmoe.moe.payloads import decode_routed_rows
from bmoe.net.edge.node import EdgeNode
from bmoe.net.validator.network_edges import NetworkEdges
from bmoe.net.work_wire import edge_task
from bmoe.run.session import Session
from bmoe.storage import MemoryStore
from tests.conftest import small_config
from tests.net.test_net_network_edges import edge_nodes

SAMPLED = {"assignment": "sampled", "replicas": 2, "num_edges": 5, "num_experts": 4}


@contextmanager
def answering_frames(edges: NetworkEdges, nodes: list[EdgeNode], seen: list[dict]) -> Iterator[None]:
    """Each node in a thread: read each new item's frame, keep its objects, compute, answer with what it carries.
    ``seen``: every frame header read, with the reader, the CIDs pushed and the routed rows' bytes."""
    stop = threading.Event()

    def run(node: EdgeNode) -> None:
        last = -1
        while not stop.is_set():
            item = edges.current()
            if item["work_id"] == last or not item["open"]:
                time.sleep(0.002)
                continue
            last = item["work_id"]
            header, objects = edges.frame(node.address)
            task = edge_task(header, node.address)
            if task is None:
                continue
            routed = header.get("routed")
            seen.append({**header, "edge": node.address, "pushed": list(objects),
                         "rows": objects.get(routed) if isinstance(routed, str) else None})
            node.keep(objects)
            tx = node.handle(task, objects[routed] if isinstance(routed, str) else None)
            carried = node.carried(tx, set(header.get("carry", [])))
            assert edges.offer(node.address, task.work_id, tx, node.last_compute_s, carried) is None

    threads = [threading.Thread(target=run, args=(node,), daemon=True) for node in nodes]
    for thread in threads:
        thread.start()
    try:
        yield
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=5)


def test_edges_on_routed_rows_encoded_when_they_read_their_item_seal_the_in_process_chain(
        tiny_data: Dataset) -> None:
    config = small_config(**SAMPLED, batch_size=64)
    direct = Session(config, dataset=tiny_data)
    direct.train(rounds=3)
    store = MemoryStore()
    edges = NetworkEdges(store, 10.0, routed_rows=True)
    session = Session(config, dataset=tiny_data, store=store, gateway=edges)
    edges.bind(session.node.pending_view)
    seen: list[dict] = []
    with answering_frames(edges, edge_nodes(session, config), seen):
        session.train(rounds=3)
    assert session.head_hash == direct.head_hash
    routed = [header for header in seen if "routed" in header]
    assert routed  # some edges computed on their routed rows alone: pushed first, the rows of their experts
    for header in routed:
        assert header["pushed"][0] == header["routed"] and header["task_cid"] not in header["pushed"]
        _, groups = decode_routed_rows(header["rows"])
        assert sorted(groups) == sorted(header["assignments"][header["edge"]])
