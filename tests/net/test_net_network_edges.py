"""``NetworkEdges`` without sockets: edge threads answer work items directly; same ledger, every refusal.

The edges here run the deployment's own ``EdgeNode`` (the same ``EdgeWorker`` as in-process) and hand
their answers to ``NetworkEdges.offer``, the function behind ``POST /txs``: the gateway's collecting,
ordering, admission and timeouts are tested without processes.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from bmoe.data import Dataset
from bmoe.edge.runtime import ExpertRuntime
from bmoe.edge.worker import EdgeWorker
from bmoe.ledger.node import Signer
from bmoe.ledger.transactions import sign_transaction
from bmoe.net.edge.node import EdgeNode
from bmoe.net.http.stats import Counters
from bmoe.net.validator.network_edges import NetworkEdges
from bmoe.net.validator.service import ValidatorService, ValidatorSettings
from bmoe.net.work_wire import edge_task
from bmoe.protocol.edges import ResultWork
from bmoe.run.config import RunConfig
from bmoe.run.session import Session
from bmoe.run.setup import behaviours
from bmoe.storage import MemoryStore, sha256_hex
from tests.conftest import small_config
from tests.net.cluster import serving

SETTINGS = {"malicious_ratio": 0.4, "attack": "gaussian", "attack_params": {"probability": 1.0}}


def network_session(config: RunConfig, data: Dataset, timeout: float = 10.0,
                    fetch_grace: float = 5.0) -> tuple[Session, NetworkEdges]:
    store = MemoryStore()
    edges = NetworkEdges(store, timeout, fetch_grace=fetch_grace)
    session = Session(config, dataset=data, store=store, gateway=edges)
    edges.bind(session.node.pending_view)
    return session, edges


def edge_nodes(session: Session, config: RunConfig, skip: tuple[int, ...] = ()) -> list[EdgeNode]:
    nodes = []
    for index, (identity, behaviour) in enumerate(zip(session.ids.edges, behaviours(config), strict=True)):
        if index in skip:
            continue
        runtime = ExpertRuntime(session.store, session.spec)  # one per edge, as in separate processes
        worker = EdgeWorker(index, Signer(identity), behaviour, runtime, session.store, config.seed, config.collude)
        nodes.append(EdgeNode(worker, runtime, session.store, config.num_experts))
    return nodes


@contextmanager
def answering(edges: NetworkEdges, nodes: list[EdgeNode], delay: float = 0.0) -> Iterator[list[str]]:
    """Each node in its own thread: watch for new work, answer it through ``offer`` (the i-th node after
    ``delay`` x i seconds). Yields the refusals seen."""
    stop = threading.Event()
    refusals: list[str] = []

    def run(position: int, node: EdgeNode) -> None:
        last = -1
        while not stop.is_set():
            item = edges.current(node.address)
            if item["work_id"] == last or not item["open"]:
                time.sleep(0.002)
                continue
            last = item["work_id"]
            task = edge_task(item, node.address)
            if task is not None:
                answer = node.handle(task)
                time.sleep(delay * position)
                refusal = edges.offer(node.address, task.work_id, answer, node.last_compute_s)
                if refusal is not None:
                    refusals.append(refusal.reason)

    threads = [threading.Thread(target=run, args=(i, node), daemon=True) for i, node in enumerate(nodes)]
    for thread in threads:
        thread.start()
    try:
        yield refusals
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=5)


@contextmanager
def validator_serving(config: RunConfig, data: Dataset, run_dir: Path,
                      edge_timeout: float) -> Iterator[tuple[str, Session]]:
    """A validator service (PoW, one validator) over HTTP, its edges answering in threads, everyone enrolled:
    its URL and its Session."""
    store = MemoryStore()
    edges = NetworkEdges(store, edge_timeout)
    session = Session(config, dataset=data, run_dir=run_dir, store=store, gateway=edges)
    edges.bind(session.node.pending_view)
    ids = session.ids
    enrolled = {"publisher": ids.publisher.address, "validator-0": ids.validator.address,
                **{f"edge-{i}": edge.address for i, edge in enumerate(ids.edges)}}

    def app(url: str):  # type: ignore[no-untyped-def]
        settings = ValidatorSettings(ids.validator, enrolled, url)
        return ValidatorService(session, edges, store, settings, Counters()).app()

    with answering(edges, edge_nodes(session, config)), serving(app) as url:
        yield url, session


def test_edges_answering_over_the_gateway_give_the_in_process_ledger(tiny_data: Dataset) -> None:
    config = small_config(**SETTINGS)
    direct = Session(config, dataset=tiny_data)
    direct.train(rounds=3)
    session, edges = network_session(config, tiny_data)
    with answering(edges, edge_nodes(session, config)) as refusals:
        session.train(rounds=3)
    assert refusals == []
    assert session.head_hash == direct.head_hash
    assert 0 < edges.busiest_seconds() < edges.exchange_seconds()  # the edges' compute within steps 2 and 5
    assert edges.counters.get("work.timed_out_edges") == 0


def test_a_silent_edge_is_absent_after_the_timeout_and_recorded_withheld(tiny_data: Dataset) -> None:
    config = small_config(**SETTINGS)
    session, edges = network_session(config, tiny_data, timeout=0.5)
    silent = session.ids.edges[4].address  # an attacker that went quiet
    with answering(edges, edge_nodes(session, config, skip=(4,))):
        started = time.monotonic()
        outcome = session.train(rounds=1)[0]
        took = time.monotonic() - started
    assert 0.5 <= took < 5
    record = session.node.view().edge_records[silent]
    assert record.committed == 0 and record.withheld == 8  # every activated expert, in steps 2 and 5
    assert outcome.accepted == 4  # the three honest edges of five still decide every expert
    assert edges.counters.get("work.timed_out_edges") == 1  # step 5 does not wait for an edge without commitments


def test_an_edge_that_never_reads_its_item_costs_the_fetch_grace_once_then_is_left_out_until_it_polls(
        tiny_data: Dataset) -> None:
    config = small_config(**SETTINGS)
    session, edges = network_session(config, tiny_data, timeout=30.0, fetch_grace=0.5)
    dead = session.ids.edges[4].address  # killed: it reads no work item
    with answering(edges, edge_nodes(session, config, skip=(4,))):
        started = time.monotonic()
        session.train(rounds=1)
        first = time.monotonic() - started
        assert 0.5 <= first < 10  # the grace, not the 30 s timeout: nobody was computing its part
        assert edges.gone() == [dead] and edges.counters.get("work.gone_edges") == 1
        withheld = session.node.view().edge_records[dead].withheld
        started = time.monotonic()
        session.train(rounds=1)
        assert time.monotonic() - started < 0.5  # left out: not waited for at all
    record = session.node.view().edge_records[dead]
    assert record.committed == 0 and record.withheld >= withheld > 0  # withheld whenever assigned, as after a timeout
    edges.polled(dead)  # it came back and asked for work
    assert edges.gone() == []


def test_every_exchange_is_timed_per_phase(tiny_data: Dataset) -> None:
    config = small_config(**SETTINGS)
    session, edges = network_session(config, tiny_data)
    with answering(edges, edge_nodes(session, config)):
        session.train(rounds=2)
    times = edges.exchange_percentiles()
    assert {"result", "update"} <= set(times) and times["result"]["n"] == 2
    assert 0 < times["result"]["p50"] <= times["result"]["p99"] < 10


def open_result_work(session: Session, edges: NetworkEdges, assigned: list[str]) -> tuple[threading.Thread, list]:
    """Publish a result work item assigning ``assigned`` (in a thread: ``results`` blocks until answered)."""
    work = ResultWork(0, "train-000000", "task-cid", "activation-cid", {a: [0] for a in assigned},
                      list(session.node.view().expert_cids), True)
    out: list = []
    thread = threading.Thread(target=lambda: out.append(edges.results(work)), daemon=True)
    thread.start()
    deadline = time.monotonic() + 5
    while not edges.current()["open"]:
        assert time.monotonic() < deadline
        time.sleep(0.005)
    return thread, out


def test_every_bad_answer_is_refused_by_reason_and_changes_nothing(tiny_data: Dataset) -> None:
    config = small_config(**SETTINGS)
    session, edges = network_session(config, tiny_data, timeout=1.5)
    ids = session.ids
    first, second, outsider = ids.edges[0], ids.edges[1], ids.edges[2]
    thread, out = open_result_work(session, edges, [first.address, second.address])
    work_id = edges.current()["work_id"]
    assert edge_task(edges.current(), outsider.address) is None  # it is not asked

    stored = session.store.put(b"a result")

    def commitment(identity, nonce=0, **payload):  # type: ignore[no-untyped-def]
        entry = {"expert": 0, "digest": sha256_hex(b"a result"), "cid": stored}
        return sign_transaction(identity, "commitment", {"task_id": "train-000000", "results": [entry], **payload},
                                nonce)

    good = commitment(first)
    forged = good.__class__(good.kind, good.sender, good.nonce, good.payload, second.sign(b"x"))
    reasons = {
        "bad_transaction_signature": edges.offer(first.address, work_id, forged),
        "sender_mismatch": edges.offer(second.address, work_id, good),
        "not_an_edge": edges.offer(ids.publisher.address, work_id, None),
        "stale_work": edges.offer(first.address, work_id - 1, good),
        "not_assigned": edges.offer(outsider.address, work_id, commitment(outsider)),
        "wrong_kind": edges.offer(first.address, work_id, sign_transaction(first, "expert_update", {}, 0)),
        "invalid_transaction": edges.offer(first.address, work_id, commitment(first, nonce=5)),
    }
    assert {reason: refusal.reason if refusal else None for reason, refusal in reasons.items()} == {
        reason: reason for reason in reasons}
    assert all(refusal and refusal.status in (400, 403, 409) and refusal.message for refusal in reasons.values())
    assert edges.counters.get("work.answers") == 0  # nothing above was admitted
    # an answer of "nothing" counts as answered; a second answer is refused
    assert edges.offer(second.address, work_id, None) is None
    assert edges.offer(second.address, work_id, None).reason == "already_answered"  # type: ignore[union-attr]
    thread.join(timeout=10)  # the first never answers well: its step ends at the timeout
    assert out == [[]]
    assert edges.offer(first.address, work_id, None).reason == "no_open_work"  # type: ignore[union-attr]


def test_answers_arriving_in_reverse_order_seal_the_same_block(tiny_data: Dataset) -> None:
    config = small_config(**SETTINGS)
    direct = Session(config, dataset=tiny_data)
    direct.train(rounds=1)
    session, edges = network_session(config, tiny_data)
    with answering(edges, list(reversed(edge_nodes(session, config))), delay=0.02):  # the last edge answers first
        session.train(rounds=1)
    assert session.head_hash == direct.head_hash


@pytest.mark.parametrize("timeout", [0.0, -1.0])
def test_a_timeout_must_be_positive(timeout: float) -> None:
    with pytest.raises(ValueError, match="positive"):
        NetworkEdges(MemoryStore(), timeout)
