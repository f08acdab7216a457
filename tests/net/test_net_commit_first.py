"""Commit first, upload on demand, over the network: edges answer a work item with a commitment whose objects
are not stored yet (an answer carries the objects the validator assigned it); the validator then publishes an
upload request (phase ``upload``) naming, for each object it still needs, one edge that committed it, and the
edges put those objects into the storage nodes and answer null.

The gateway's answers and uploads run over ``NetworkEdges`` with edge threads (the same ``EdgeNode`` as an
edge process), and a whole deployment of processes: both seal exactly the in-process ledger, count the same
bytes, and the deployment audits clean against its storage nodes.
"""

from __future__ import annotations

import threading
import time

import pytest

from bmoe.data import Dataset
from bmoe.edge.work import PHASE_UPLOAD
from bmoe.ledger.transactions import sign_transaction
from bmoe.net.work_wire import WireError, edge_task, upload_work_json
from bmoe.run.config import RunConfig
from bmoe.run.session import Session
from tests.conftest import small_config
from tests.net.deploy import cluster_data, run_module, running_cluster
from tests.net.test_net_network_edges import answering, edge_nodes, network_session

ATTACKED = small_config(malicious_ratio=0.4, attack="gaussian", attack_params={"probability": 1.0}, collude=True)
SAMPLED = ATTACKED.replace(assignment="sampled", replicas=3)
ROUNDS = 2


def test_an_upload_request_on_the_wire_names_each_edge_s_objects() -> None:
    item = upload_work_json(9, "train-000001", "result", {"a" * 64: ["cid-1", "cid-2"], "b" * 64: ["cid-3"]},
                            ["a" * 64, "b" * 64])
    task = edge_task(item, "a" * 64)
    assert task is not None and task.work_id == 9
    assert task.item.phase == PHASE_UPLOAD and task.item.task_id == "train-000001"
    assert task.item.upload_cids == ["cid-1", "cid-2"]
    assert edge_task(item, "c" * 64) is None  # not asked
    with pytest.raises(WireError):
        edge_task({**item, "requests": {"a" * 64: "cid-1"}}, "a" * 64)


@pytest.mark.parametrize("config", [ATTACKED, SAMPLED], ids=["all", "sampled"])
def test_edges_over_the_gateway_upload_what_is_asked_and_seal_the_in_process_ledger(
        tiny_data: Dataset, config: RunConfig) -> None:
    direct = Session(config, dataset=tiny_data)
    direct.train(rounds=ROUNDS)
    session, edges = network_session(config, tiny_data)
    with answering(edges, edge_nodes(session, config)) as refusals:
        session.train(rounds=ROUNDS)
    assert refusals == []
    assert session.head_hash == direct.head_hash
    assert [r["bytes_total"] for r in session.history] == [r["bytes_total"] for r in direct.history]
    assert edges.counters.get("work.upload") >= 2 * ROUNDS and edges.counters.get("work.timed_out_edges") == 0


def test_a_node_that_uploads_nothing_is_replaced_by_the_next_and_nothing_honest_is_accused(
        tiny_data: Dataset, monkeypatch: pytest.MonkeyPatch) -> None:
    direct = Session(ATTACKED, dataset=tiny_data)
    direct.train(rounds=ROUNDS)
    session, edges = network_session(ATTACKED, tiny_data)
    nodes = edge_nodes(session, ATTACKED)
    monkeypatch.setattr(nodes[0].worker, "upload", lambda cids: [])  # honest, asked for the first object of each phase
    with answering(edges, nodes) as refusals:
        session.train(rounds=ROUNDS)
    assert refusals == []
    assert session.head_hash == direct.head_hash
    assert edges.counters.get("work.upload") == 4 * ROUNDS  # each phase asked twice: what edge 0 kept, of another
    records = session.node.view().edge_records
    honest = [node.address for node in nodes if not node.worker.behaviour.malicious]
    assert all(records[address].dissent == records[address].withheld == 0 for address in honest)


def test_an_upload_request_takes_no_transaction(tiny_data: Dataset) -> None:
    session, edges = network_session(ATTACKED, tiny_data, timeout=0.5)
    first = session.ids.edges[0]
    done = threading.Thread(target=edges.uploads, args=("train-000000", "result", {first.address: ["cid"]}),
                            daemon=True)
    done.start()
    deadline = time.monotonic() + 5
    while not edges.current()["open"]:
        assert time.monotonic() < deadline
        time.sleep(0.005)
    assert edges.current()["phase"] == PHASE_UPLOAD
    work_id = edges.current()["work_id"]
    tx = sign_transaction(first, "commitment", {"task_id": "train-000000", "results": []}, 0)
    assert edges.offer(first.address, work_id, tx).reason == "wrong_kind"  # type: ignore[union-attr]
    assert edges.offer(first.address, work_id, None) is None
    done.join(timeout=5)
    assert not done.is_alive()


def test_a_deployment_commits_first_seals_the_in_process_ledger_and_audits(
        tmp_path_factory: pytest.TempPathFactory) -> None:
    root = tmp_path_factory.mktemp("commit-first") / "cluster"
    with running_cluster(root, 6.0, "--edges", "5", "--malicious", "0.4") as (cluster, _):
        result = run_module("bmoe.net.publish", "--cluster-dir", cluster.root, "--rounds", str(ROUNDS), timeout=180)
        assert result.returncode == 0, result.stdout + result.stderr + cluster.logs()
        head = cluster.get("/head")
        stats = cluster.get("/stats")
        with Session(cluster.config, dataset=cluster_data(cluster), identities=cluster.identities()) as session:
            session.train(rounds=ROUNDS)
            assert head["height"] == ROUNDS and head["head_hash"] == session.head_hash
        audit = run_module("bmoe", "audit", "--cluster", cluster.root, "--expect-head", head["head_hash"], timeout=120)
        assert audit.returncode == 0, audit.stdout + audit.stderr
    # Answers carry the objects the validator assigned them (one copy each); what no answer carried (the attackers'
    # updated weights, evidence behind their records) is asked for on demand.
    assert stats["work"]["carried"] > 0 and stats["work"]["pushed"] > 0
    assert stats["work"]["upload"] >= 1 and "timed_out_edges" not in stats["work"]
