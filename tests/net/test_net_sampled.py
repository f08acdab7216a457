"""``bmoe cluster up --assignment sampled``: edge processes compute only the experts the chain samples
for them, and the deployment seals exactly the in-process ledger and audits clean; with colluders, split
samples are disputed over the network (more work of the same round to the other edges, and escalated
updates to edges that never ran the forward pass) and the deployment still seals the in-process ledger."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from bmoe.run.session import Session
from tests.net.deploy import LocalCluster, cluster_data, run_module, running_cluster


@pytest.fixture(scope="module")
def sampled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    with running_cluster(tmp_path_factory.mktemp("sampled") / "cluster", 6.0, "--assignment", "sampled",
                         "--replicas", "2") as (cluster, _):
        yield cluster


def test_a_sampled_deployment_seals_the_in_process_ledger_and_audits(sampled: LocalCluster) -> None:
    assert sampled.config.assignment == "sampled" and sampled.config.replicas == 2
    result = run_module("bmoe.net.publish", "--cluster-dir", sampled.root, "--rounds", "2", timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr + sampled.logs()
    head = sampled.get("/head")
    session = Session(sampled.config, dataset=cluster_data(sampled), identities=sampled.identities())
    session.train(rounds=2)
    assert head["height"] == 2 and head["head_hash"] == session.head_hash
    audit = run_module("bmoe", "audit", "--cluster", sampled.root, "--expect-head", head["head_hash"], timeout=120)
    assert audit.returncode == 0, audit.stdout + audit.stderr


def test_disputes_over_the_network_seal_the_in_process_ledger(tmp_path_factory: pytest.TempPathFactory) -> None:
    root = tmp_path_factory.mktemp("disputes") / "cluster"
    with running_cluster(root, 6.0, "--edges", "5", "--assignment", "sampled", "--replicas", "3", "--malicious", "0.4",
                         "--attack", "gaussian", "--attack-param", "probability=1.0", "--collude", "--stake", "500",
                         "--slash", "50") as (cluster, _):
        result = run_module("bmoe.net.publish", "--cluster-dir", cluster.root, "--rounds", "2", timeout=180)
        assert result.returncode == 0, result.stdout + result.stderr + cluster.logs()
        head = cluster.get("/head")
        with Session(cluster.config, dataset=cluster_data(cluster), identities=cluster.identities()) as session:
            session.train(rounds=2)
            assert any(task.escalated for task in session.node.state.tasks.values())
            assert head["height"] == 2 and head["head_hash"] == session.head_hash
            balances = {edge: b.balance for edge, b in session.node.state.balances.items()}
        audit = run_module("bmoe", "audit", "--cluster", cluster.root, "--expect-head", head["head_hash"], timeout=120)
        assert audit.returncode == 0, audit.stdout + audit.stderr
        records = run_module("bmoe", "records", cluster.root, "--json", timeout=60)
        assert records.returncode == 0, records.stderr
        printed = json.loads(records.stdout)
        assert {row["address"]: row["balance"] for row in printed["edges"]} == balances
        assert any(row["slashed"] > 0 for row in printed["edges"])
