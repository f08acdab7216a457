"""The paper's baseline as processes: ``bmoe cluster up --framework traditional``.

One server (the validator process, keeping no ledger), 4 edges each hosting one expert, the last one
attacking; one storage node listens on 127.0.0.2 (``--listen``). Its rounds end ``done`` (no block),
its answers are the in-process traditional run's (same gate and expert CIDs after training), and the
attacker's results are taken unverified.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bmoe.data import Dataset
from bmoe.run.session import Session
from tests.net.deploy import LocalCluster, cluster_data, run_module, running_cluster

EDGE_TIMEOUT_S = 6.0


@pytest.fixture(scope="module")
def traditional(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    with running_cluster(tmp_path_factory.mktemp("traditional") / "cluster", EDGE_TIMEOUT_S,
                         "--framework", "traditional", "--listen", "store-1=127.0.0.2") as (cluster, printed):
        assert "1 server (traditional: no ledger)" in printed
        assert cluster.description.process("store-1").url.startswith("http://127.0.0.2:")  # type: ignore[union-attr]
        yield cluster


@pytest.fixture(scope="module")
def data(traditional: LocalCluster) -> Dataset:
    return cluster_data(traditional)


def test_traditional_rounds_over_the_network_match_the_in_process_run(traditional: LocalCluster,
                                                                      data: Dataset) -> None:
    records = traditional.publish(3, data)
    assert [r["status"] for r in records] == ["done"] * 3
    assert all(r["height"] is None and r["block_hash"] is None for r in records)  # no ledger, no blocks
    assert all(r["rejected"] == 0 and r["misbehaviour"] == [] for r in records)  # nothing is verified
    assert all(r["times"]["consensus"] >= 0 and r["times"]["mine"] == 0 for r in records)
    session = Session(traditional.config, dataset=data)
    session.train(rounds=3)
    head = traditional.get("/head")
    assert head["train_tasks"] == 3
    assert head["gate_cid"] == session.node.state.gate_cid
    assert head["expert_cids"] == list(session.node.state.expert_cids)
    assert session.config.malicious_edges == 1  # the attacked expert's noise is in both models alike


def test_traditional_inference_and_status(traditional: LocalCluster, data: Dataset) -> None:
    assert 0.0 <= traditional.infer(data, limit=64) <= 1.0
    status = run_module("bmoe", "cluster", "status", "--dir", traditional.root, timeout=60)
    assert status.returncode == 0, status.stdout + status.stderr
    assert "3 training and 2 inference tasks recorded (no ledger)" in status.stdout
