"""Edges started by hand declare their numeric profile in every poll; under exact comparison the validator
excludes an honest edge whose declared profile computes otherwise than the run configures it (named in
``/stats``, recorded absent), and the rest of the fleet goes on sealing tasks without accusing anyone."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from bmoe.net.cluster.processes import spawn
from tests.net.deploy import LocalCluster, cluster_data, running_cluster

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


def test_a_hand_started_edge_with_other_numerics_is_excluded_and_the_fleet_goes_on(exact: LocalCluster) -> None:
    restart_edge_with_profile(exact, 1, "f64")
    assert list(exact.get("/stats")["excluded_edges"]) == ["edge-1"]
    records = exact.publish(1, cluster_data(exact))
    assert [r["status"] for r in records] == ["sealed"]
    assert {m["phase"] for m in records[0]["misbehaviour"]} <= {"withheld", "result", "update"}
    assert len({m["edge"] for m in records[0]["misbehaviour"]}) <= 1  # edge-1 alone, absent: nobody else accused
    restart_edge_with_profile(exact, 1, "threads1")  # under --threads 1 the same numerics as default
    assert exact.get("/stats")["excluded_edges"] == {}
    records = exact.publish(1, cluster_data(exact))
    assert [(r["status"], r["accepted"], r["misbehaviour"]) for r in records] == [("sealed", 4, [])]
