"""A mixed fleet as processes: ``bmoe cluster up --fleet default=2,f64=1,mkl-compat=1``.

Each edge process starts with its profile (``--profile NAME``; ``env MKL_CBWR=COMPATIBLE`` before
Python for ``mkl-compat``) and says so in its log.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.net.deploy import LocalCluster, run_module, running_cluster

EDGE_TIMEOUT_S = 6.0
FLEET = "default=2,f64=1,mkl-compat=1"


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    with running_cluster(tmp_path_factory.mktemp("fleet") / "cluster", EDGE_TIMEOUT_S, "--fleet", FLEET) as (
            cluster, _):
        yield cluster


def test_each_edge_process_runs_under_its_profile(fleet: LocalCluster) -> None:
    edges = fleet.description.by_role("edge")
    profiles = [record.argv[record.argv.index("--profile") + 1] for record in edges]
    assert profiles == ["default", "default", "f64", "mkl-compat"]
    assert edges[3].argv[:2] == ["env", "MKL_CBWR=COMPATIBLE"] and edges[2].argv[0] != "env"
    for record, profile in zip(edges, profiles, strict=True):
        assert f"profile {profile}," in fleet.description.path(record.log).read_text()


def test_a_bad_fleet_is_refused_in_one_line_before_anything_is_written(tmp_path: Any) -> None:
    result = run_module("bmoe.net.cluster", "up", "--dir", tmp_path / "c", "--edges", "4", "--fleet", "f64=3")
    assert result.returncode == 2, result.stdout + result.stderr
    assert [line for line in result.stderr.splitlines() if line.strip()] == [
        "error: fleet counts sum to 3, but there are 4 edges (M)"]
    assert not (tmp_path / "c").exists()

