"""An edge whose operator holds its key: ``cluster up --enrol FILE`` enrols the public key the operator handed
in, starts every other process, and the operator runs the edge with a key the cluster never saw.

On one cluster (2 storage nodes, 1 validator, 4 edges, edge-3 attacking), edge-1 is the operator's:
the cluster holds no key for it; the same edge started with another participant's key file is refused;
started with the operator's key it polls, answers and is accepted in every round; the genesis enrols the
operator's key and the audit says the keys are enrolled ones.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bmoe.ledger.keys import create_identity, generate_identity, load_identity
from bmoe.net.cluster.processes import spawn
from bmoe.net.enrolment import load_enrolment
from tests.net.deploy import LocalCluster, run_module, running_cluster

EDGE_TIMEOUT_S = 6.0


@pytest.fixture(scope="module")
def operated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalCluster, Path]]:
    root = tmp_path_factory.mktemp("operator")
    key = root / "operator" / "edge-1.key"  # the operator's, outside the cluster directory
    key.parent.mkdir()
    create_identity(key, generate_identity("edge-1"))
    (root / "enrol.txt").write_text(f"# handed in by edge-1's operator\nedge-1 {load_identity(key).address}\n")
    with running_cluster(root / "cluster", EDGE_TIMEOUT_S, "--enrol", str(root / "enrol.txt")) as (cluster, out):
        assert "edge-1       edge      run by its operator: bmoe edge --cluster-dir" in out, out
        yield cluster, key


def edge_command(cluster: LocalCluster, key: Path) -> list[str]:
    return [sys.executable, "-m", "bmoe.net.edge", "--cluster-dir", str(cluster.root), "--index", "1",
            "--key", str(key)]


def test_the_cluster_holds_no_key_for_the_operators_edge(operated: tuple[LocalCluster, Path]) -> None:
    cluster, key = operated
    record = cluster.description.process("edge-1")
    assert record.argv == [] and record.key == "" and record.pid is None
    assert not (cluster.root / "keys" / "edge-1.key").exists()
    assert load_enrolment(cluster.root / "enrolled.json")["edge-1"] == load_identity(key).address == record.address


def test_the_operators_edge_started_with_another_participants_key_is_refused(
        operated: tuple[LocalCluster, Path]) -> None:
    cluster, _ = operated
    for other in ("validator-0", "edge-2"):
        result = subprocess.run(edge_command(cluster, cluster.root / "keys" / f"{other}.key"), capture_output=True,
                                text=True, timeout=60, stdin=subprocess.DEVNULL)
        assert result.returncode == 2, result.stdout + result.stderr
        assert f"is {other}'s in the enrolment, not edge-1's" in result.stderr, result.stderr


def test_the_operators_edge_answers_every_round_and_the_audit_says_whose_keys(
        operated: tuple[LocalCluster, Path]) -> None:
    cluster, key = operated
    spawn(edge_command(cluster, key), cluster.root / "logs" / "edge-1.log")  # the operator starts it
    cluster.wait_for_edges()
    result = run_module("bmoe.net.publish", "--cluster-dir", cluster.root, "--rounds", "2", timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr + cluster.logs()
    for task_id in ("train-000000", "train-000001"):
        task = cluster.get(f"/tasks/{task_id}")
        assert task["status"] == "sealed" and task["accepted"] >= 1, task
        accused = {m["edge"] for m in task["misbehaviour"]}
        assert accused == {cluster.description.edge(3).address}  # the attacker only: edge-1 answered in time
    audit = run_module("bmoe", "audit", "--cluster", cluster.root, timeout=120)
    assert audit.returncode == 0, audit.stdout + audit.stderr
    assert "keys: enrolled public keys, each held by its owner" in audit.stdout
