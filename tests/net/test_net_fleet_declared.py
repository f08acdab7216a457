"""Edges started by hand declare their numeric profile in every poll; under exact comparison the validator
refuses tasks while the honest edges' declared profiles compute differently (409 ``mixed_fleet``), so
``bmoe train --cluster`` (``bmoe publish``) fails in one line instead of sealing rounds that accuse honest edges."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from bmoe.net.processes import spawn
from tests.net.deploy import LocalCluster, cluster_data, run_module, running_cluster

EDGE_TIMEOUT_S = 6.0


@pytest.fixture(scope="module")
def exact(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    with running_cluster(tmp_path_factory.mktemp("declared") / "cluster", EDGE_TIMEOUT_S, "--malicious", "0") as (
            cluster, _):
        yield cluster


def restart_edge_with_profile(cluster: LocalCluster, index: int, profile: str) -> None:
    """Stop edge ``index`` and start it again by hand with ``--profile profile``; wait for its declaration."""
    name = f"edge-{index}"
    cluster.kill(name)
    description = cluster.description
    record = description.process(name)
    argv = list(record.argv)
    argv[argv.index("--profile") + 1] = profile
    record.argv = argv
    record.pid, record.start_time = spawn(argv, description.path(record.log))
    description.save()
    deadline = time.monotonic() + 60
    while cluster.get("/stats").get("edge_profiles", {}).get(name) != profile:
        assert time.monotonic() < deadline, cluster.logs()
        time.sleep(0.2)


def test_edges_declare_their_profiles_and_a_homogeneous_fleet_trains(exact: LocalCluster) -> None:
    assert exact.get("/stats")["edge_profiles"] == {f"edge-{i}": "default" for i in range(4)}
    records = exact.publish(1, cluster_data(exact))
    assert [(r["status"], r["accepted"], r["misbehaviour"]) for r in records] == [("sealed", 4, [])]


def test_a_hand_started_edge_with_other_numerics_makes_the_validator_refuse_tasks(exact: LocalCluster) -> None:
    restart_edge_with_profile(exact, 1, "f64")
    result = run_module("bmoe.net.publisher", "--cluster-dir", exact.root, "--rounds", "1")
    assert result.returncode == 2, result.stdout + result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "409" in lines[0] and "mixed_fleet" in lines[0], lines
    assert "default=3,f64=1" in lines[0] and "--comparison tolerance" in lines[0]
    assert exact.get("/head")["height"] == 1  # nothing sealed
    restart_edge_with_profile(exact, 1, "threads1")  # under --threads 1 the same numerics as default
    records = exact.publish(1, cluster_data(exact))
    assert [(r["status"], r["accepted"], r["misbehaviour"]) for r in records] == [("sealed", 4, [])]
