"""A deployment as real processes on 127.0.0.1: 2 storage nodes, 1 validator, 4 edges (one attacking).

In file order, on one cluster (``bmoe cluster up``): the same head hash as an in-process run; bad
messages refused and counted; ``kill -9`` of the validator loses nothing sealed; a killed edge is
recorded as withheld after the edge timeout; ``cluster down`` leaves no process behind. The module
fixture kills everything the cluster started, whatever happened, and checks nothing is left.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from bmoe.data import Dataset
from bmoe.ledger.keys import derive_identity
from bmoe.ledger.transactions import sign_transaction, tx_to_dict
from bmoe.net.cluster.processes import alive
from bmoe.net.http.auth import SignedAuth, sign_request
from bmoe.net.store.client import HttpBlobStore
from bmoe.net.validator.service import DEFAULT_VALIDATOR_MAX_BODY
from bmoe.run.session import Session
from bmoe.storage import cid_of
from tests.net import raw_http
from tests.net.deploy import LocalCluster, cluster_data, processes_naming, run_module, running_cluster

EDGE_TIMEOUT_S = 6.0  # generous: an honest edge that times out would change the ledger


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    with running_cluster(tmp_path_factory.mktemp("deploy") / "cluster", EDGE_TIMEOUT_S) as (cluster, _):
        yield cluster


@pytest.fixture(scope="module")
def data(deployed: LocalCluster) -> Dataset:
    return cluster_data(deployed)


def in_process_head(cluster: LocalCluster, data: Dataset, rounds: int) -> str:
    """The head of an in-process run of the cluster's config with the cluster's (fresh) keys."""
    session = Session(cluster.config, dataset=data, identities=cluster.identities())
    session.train(rounds=rounds)
    assert session.head_hash is not None
    return session.head_hash


# The fast tier's one cluster (tests/tiers.py): up, three rounds, the network's head = the in-process head.
@pytest.mark.witness(seconds=120)
def test_three_rounds_over_the_network_seal_the_in_process_ledger(deployed: LocalCluster, data: Dataset) -> None:
    result = run_module("bmoe.net.publish", "--cluster-dir", deployed.root, "--rounds", "3", timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr + deployed.logs()
    head = deployed.get("/head")
    assert head["height"] == 3 and head["train_tasks"] == 3
    assert head["head_hash"] == in_process_head(deployed, data, 3)
    assert f"head {head['head_hash']} at height 3" in result.stdout
    task = deployed.get("/tasks/train-000002")
    assert task["status"] == "sealed" and task["height"] == 3 and task["accepted"] == 4
    attacker = deployed.description.edge(3).address  # Gaussian noise, probability 1: dissent on every expert
    assert [m["edge"] for m in task["misbehaviour"]] == [attacker, attacker]
    assert {r["reason"] for m in task["misbehaviour"] for r in m["records"]} == {"dissent"}
    assert set(task["times"]) >= {"gate", "compute", "verify", "loss", "update", "consensus", "round"}


def test_the_deployments_chain_audits_against_its_storage_nodes(deployed: LocalCluster) -> None:
    head = deployed.get("/head")["head_hash"]
    result = run_module("bmoe", "audit", "--cluster", deployed.root, "--expect-head", head, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"head {head}" in result.stdout and "evidence objects behind misbehaviour records" in result.stdout
    assert "anchored to:" in result.stdout and "config.json" in result.stdout
    unknown = run_module("bmoe", "audit", "--cluster", deployed.root, "--expect-head", "ab" * 32, timeout=120)
    assert unknown.returncode == 2 and "not in the chain" in unknown.stderr, unknown.stderr


def refused(reply: httpx.Response | tuple[int, bytes], status: int, reason: str) -> None:
    code, content = (reply.status_code, reply.content) if isinstance(reply, httpx.Response) else reply
    assert code == status, content
    body = json.loads(content)
    assert body["reason"] == reason and body["error"], body


def declared_too_large(url: str) -> tuple[int, bytes]:
    """A task POST announcing a body over the validator's limit, and sending none of it."""
    host, port = url.removeprefix("http://").split(":")
    return raw_http.declared_too_large(host, int(port), "POST", "/tasks", DEFAULT_VALIDATOR_MAX_BODY + 1)


def test_bad_messages_are_refused_counted_and_the_validator_keeps_serving(deployed: LocalCluster) -> None:
    cluster = deployed.description
    url, host = cluster.validator, cluster.validator.removeprefix("http://")
    publisher, edge = deployed.publisher, deployed.key("edge-0")
    before = deployed.get("/stats").get("errors", {})
    task = sign_transaction(publisher, "task", {"task_id": "train-999999", "kind": "train", "data_cid": "x",
                                                "samples": 1, "round": 99}, 0)
    with httpx.Client(timeout=10) as raw, deployed.client() as signed, deployed.client(edge) as as_edge:
        refused(raw.get(f"{url}/head", auth=SignedAuth(derive_identity(1, "mallory"))), 403, "unknown_key")
        forged = sign_request(publisher, "POST", "/tasks", "", host, b"{}")
        forged["x-bmoe-content-sha256"] = forged["x-bmoe-content-sha256"][::-1]  # signed over another body
        refused(raw.post(f"{url}/tasks", content=b"{}", headers=forged), 401, "bad_signature")
        once = sign_request(publisher, "GET", "/head", "", host, b"")
        assert raw.get(f"{url}/head", headers=once).status_code == 200
        refused(raw.get(f"{url}/head", headers=once), 409, "replayed")
        refused(declared_too_large(url), 413, "too_large")
        refused(signed.post(f"{url}/tasks", content=b"{not json"), 400, "malformed_json")
        refused(signed.post(f"{url}/tasks", json={"kind": "task"}), 400, "malformed_transaction")
        refused(signed.post(f"{url}/tasks", json=tx_to_dict(task)), 400, "invalid_transaction")  # wrong nonce
        refused(as_edge.post(f"{url}/txs", content=b"\xff\xfe"), 400, "malformed_json")
        refused(as_edge.post(f"{url}/txs", json={"work_id": 1, "transaction": {"kind": 1}}), 400,
                "malformed_transaction")
        refused(as_edge.post(f"{url}/txs", json={"work_id": 1, "transaction": None, "compute_s": -1}), 400,
                "malformed_transaction")  # an edge's measured seconds must be a duration
        commitment = sign_transaction(edge, "commitment", {"task_id": "train-000003", "results": []}, 3)
        answer = {"work_id": 1, "transaction": tx_to_dict(commitment)}
        refused(signed.post(f"{url}/txs", json=answer), 403, "sender_mismatch")  # the publisher relays an edge's
        not_an_edge = sign_transaction(publisher, "commitment", {"task_id": "train-000003", "results": []}, 3)
        refused(signed.post(f"{url}/txs", json={"work_id": 1, "transaction": tx_to_dict(not_an_edge)}), 403,
                "not_an_edge")
        refused(as_edge.post(f"{url}/txs", json=answer), 409, "no_open_work")  # nothing is being collected
        refused(signed.get(f"{url}/tasks/train-424242"), 404, "unknown_task")
        refused(signed.get(f"{url}/work", params={"after": "soon"}), 400, "bad_query")
    nonce = deployed.get("/head")["nonces"][publisher.address] + 1
    with deployed.client() as signed, HttpBlobStore(cluster.stores, publisher) as store:
        absent = sign_transaction(publisher, "task", {"task_id": "train-777777", "kind": "train", "samples": 1,
                                                      "data_cid": cid_of(b"never stored"), "round": 3}, nonce)
        refused(signed.post(f"{url}/tasks", json=tx_to_dict(absent)), 400, "missing_object")
        garbage = sign_transaction(publisher, "task", {"task_id": "train-888888", "kind": "train", "samples": 1,
                                                       "data_cid": store.put(b"not a task"), "round": 3}, nonce)
        sealed_again = sign_transaction(publisher, "task", {"task_id": "train-000001", "kind": "train", "samples": 1,
                                                            "data_cid": cid_of(b"never stored"), "round": 1}, nonce)
        refused(signed.post(f"{url}/tasks", json=tx_to_dict(sealed_again)), 409, "duplicate_task")
        refused(signed.post(f"{url}/tasks", json=tx_to_dict(garbage)), 400, "bad_task_data")  # refused at the door
        deep = b"[" * 100_000 + b"]" * 100_000
        refused(signed.post(f"{url}/tasks", content=deep), 400, "json_too_deep")
    after = deployed.get("/stats")["errors"]
    expected = {"unknown_key": 1, "bad_signature": 1, "replayed": 1, "too_large": 1, "malformed_json": 2,
                "malformed_transaction": 3, "invalid_transaction": 1, "sender_mismatch": 1, "not_an_edge": 1,
                "no_open_work": 1, "unknown_task": 1, "bad_query": 1, "missing_object": 1, "duplicate_task": 1,
                "bad_task_data": 1, "json_too_deep": 1}
    assert {reason: after.get(reason, 0) - before.get(reason, 0) for reason in expected} == expected
    assert deployed.get("/head")["height"] == 3  # still serving; nothing the abuse sent was queued or sealed


def test_kill_9_of_the_validator_loses_nothing_sealed(deployed: LocalCluster, data: Dataset) -> None:
    head = deployed.get("/head")
    record = deployed.description.process("validator-0")
    deployed.kill("validator-0")
    assert not alive(record.pid, record.start_time)
    deployed.restart("validator-0")
    deployed.wait_for_edges()
    assert deployed.get("/head") == head  # replayed from its chain: same height, hash, state
    assert deployed.get("/tasks/train-000001")["status"] == "sealed"  # task records come from the chain
    [sealed] = deployed.publish(1, data)  # the edges find the restarted validator by themselves
    assert sealed["height"] == head["height"] + 1
    assert deployed.get("/head")["head_hash"] == in_process_head(deployed, data, head["height"] + 1)


def refuse_while_collecting(deployed: LocalCluster) -> None:
    """While step 2 waits for the dead edge, a live edge that already answered cannot answer again."""
    url, edge = deployed.description.validator, deployed.key("edge-0")
    with deployed.client(edge) as as_edge:
        deadline = time.monotonic() + 30
        while not (item := as_edge.get(f"{url}/work", params={"after": "-1"}).json())["open"]:
            assert time.monotonic() < deadline, "no work item was published"
            time.sleep(0.02)
        assert item["phase"] == "result" and edge.address in item["expected"]
        time.sleep(EDGE_TIMEOUT_S / 4)  # the live edges answer in well under a second
        refused(as_edge.post(f"{url}/txs", json={"work_id": item["work_id"], "transaction": None}), 409,
                "already_answered")
        refused(as_edge.post(f"{url}/txs", json={"work_id": item["work_id"] - 1, "transaction": None}), 409,
                "stale_work")


def test_a_killed_edge_is_recorded_withheld_after_the_edge_timeout(deployed: LocalCluster, data: Dataset) -> None:
    victim = deployed.description.edge(3)  # the attacker: the three honest edges keep a majority
    before = deployed.get("/head")["edge_records"][victim.address]
    deployed.kill(victim.name)
    outcome: dict[str, object] = {}

    def publish() -> None:
        try:
            outcome["records"] = deployed.publish(1, data)
        except Exception as exc:  # re-raised below, in the test's thread
            outcome["error"] = exc

    started = time.monotonic()
    publisher = threading.Thread(target=publish)
    publisher.start()
    try:
        refuse_while_collecting(deployed)
    finally:
        publisher.join(timeout=60)
    took = time.monotonic() - started
    assert "error" not in outcome, outcome
    [sealed] = outcome["records"]  # type: ignore[misc]
    assert EDGE_TIMEOUT_S <= took < EDGE_TIMEOUT_S + 20
    assert sealed["accepted"] == 4
    withheld = [(m["phase"], r["expert"]) for m in sealed["misbehaviour"] if m["edge"] == victim.address
                for r in m["records"] if r["reason"] == "withheld"]
    assert sorted(withheld) == [("result", 0), ("result", 1), ("result", 2), ("result", 3),
                                ("update", 0), ("update", 1), ("update", 2), ("update", 3)]
    after = deployed.get("/head")["edge_records"][victim.address]
    assert after["withheld"] == before["withheld"] + 8 and after["committed"] == before["committed"]
    assert deployed.get("/stats")["work"]["timed_out_edges"] >= 1
    height = deployed.get("/head")["height"]
    assert 0.0 <= deployed.infer(data, limit=64) <= 1.0  # serving the test set: two 32-sample inference blocks
    assert deployed.get("/head")["height"] == height + 2


def test_cluster_status_then_down_leaves_no_process_behind(deployed: LocalCluster) -> None:
    status = run_module("bmoe", "cluster", "status", "--dir", deployed.root, timeout=60)
    assert status.returncode == 1, status.stdout + status.stderr  # edge-3 was killed above
    assert "edge-3" in status.stdout and "stopped" in status.stdout
    assert "5 training and 2 inference tasks sealed" in status.stdout
    pids = [(pid, started) for pid, started in deployed.pids() if alive(pid, started)]
    assert len(pids) == 6
    down = run_module("bmoe", "cluster", "down", "--dir", deployed.root, "--grace", "10", timeout=60)
    assert down.returncode == 0, down.stdout + down.stderr
    assert "none left" in down.stdout
    assert not any(alive(pid, started) for pid, started in pids)
    assert processes_naming(str(deployed.root)) == []
    assert all(pid is None for pid, _ in deployed.pids())  # recorded as stopped
