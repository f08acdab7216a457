"""A mixed fleet as processes: ``bmoe cluster up --fleet default=1,threads2=1,f64=1,mkl-compat=1,chunked=1
--comparison tolerance``.

Each edge process starts with its profile (``--profile NAME``; ``env MKL_CBWR=COMPATIBLE`` before
Python for ``mkl-compat``) and says so in its log. Under tolerance the fleet trains with every expert
accepted and no misbehaviour record, the accepted update is at times a median no edge uploaded (its
own CID), which every edge fetches the next round, and the chain audits clean. Its bounds come from a
calibration (``--bound-from``): ``up`` prints them and the genesis records the calibration's CID; a
forged calibration or a bound outside its window is refused in one line. Under exact the same fleet
is refused before anything is written or started.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bmoe.ledger.chainstore import ChainStore
from bmoe.storage import cid_of
from tests.cli.calibration_file import write_calibration
from tests.cli.in_process import bmoe_here
from tests.net.deploy import LocalCluster, cluster_data, processes_naming, run_module, running_cluster

EDGE_TIMEOUT_S = 6.0
FLEET = "default=1,threads2=1,f64=1,mkl-compat=1,chunked=1"
FLEET_FLAGS = ("--edges", "5", "--malicious", "0", "--fleet", FLEET)


@pytest.fixture(scope="module")
def fleet_up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalCluster, str, str]]:
    """The cluster, what ``up`` printed, and the CID of the calibration its bounds were checked against
    (honest maxima 1e-5 and 1e-6: the default bounds, 1e-4 and 1e-5, are its recommendation)."""
    root = tmp_path_factory.mktemp("fleet")
    calibration = write_calibration(root / "calibration.json", result_max=1e-5, update_max=1e-6, fleet=FLEET)
    with running_cluster(root / "cluster", EDGE_TIMEOUT_S, *FLEET_FLAGS, "--comparison", "tolerance",
                         "--bound-from", str(calibration)) as (cluster, printed):
        yield cluster, printed, cid_of(calibration.read_bytes())


@pytest.fixture(scope="module")
def fleet(fleet_up: tuple[LocalCluster, str, str]) -> LocalCluster:
    return fleet_up[0]


def test_up_prints_the_bound_in_force_and_the_genesis_records_its_calibration(
        fleet_up: tuple[LocalCluster, str, str]) -> None:
    cluster, printed, cid = fleet_up
    assert f"bound in force: results <= 0.0001, updates <= 1e-05: checked against calibration {cid}" in printed
    with ChainStore(cluster.root / "validator-0" / "chain.sqlite", readonly=True) as chain:
        genesis = next(chain.iter_blocks()).transactions[0].payload
    assert genesis["calibration"] == {"cid": cid, "result_max": 1e-5, "update_max": 1e-6}
    assert "force_bound" not in genesis


def test_a_forged_calibration_or_a_bound_outside_its_window_is_refused_before_anything_is_written(
        tmp_path: Path) -> None:
    calibration = write_calibration(tmp_path / "calibration.json")  # honest maxima 2e-6, 4e-7
    forged = tmp_path / "forged.json"
    forged.write_text(calibration.read_text().replace('"bound": 1.9999999999999998e-05', '"bound": 1e-300'))
    for flags, message in (((str(forged),), "is not its safety_factor x its observed maximum"),
                           ((str(calibration), "--bound", "1e-7"), "the result bound 1e-07 is below the largest "
                                                                  "honest divergence the calibration measured")):
        result = bmoe_here("cluster", "up", "--dir", tmp_path / "c", "--edges", "4",
                            "--comparison", "tolerance", "--bound-from", *flags)
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert result.returncode == 2 and len(lines) == 1 and message in lines[0], result.stdout + result.stderr
        assert not (tmp_path / "c").exists()


def test_each_edge_process_runs_under_its_profile(fleet: LocalCluster) -> None:
    edges = fleet.description.by_role("edge")
    profiles = [record.argv[record.argv.index("--profile") + 1] for record in edges]
    assert profiles == ["default", "threads2", "f64", "mkl-compat", "chunked"]
    assert edges[3].argv[:2] == ["env", "MKL_CBWR=COMPATIBLE"] and edges[2].argv[0] != "env"
    for record, profile in zip(edges, profiles, strict=True):
        assert f"profile {profile}," in fleet.description.path(record.log).read_text()


def test_under_tolerance_every_expert_is_accepted_without_misbehaviour_and_the_chain_audits(
        fleet: LocalCluster) -> None:
    assert fleet.config.comparison == "tolerance"
    records = fleet.publish(3, cluster_data(fleet))
    assert [(r["status"], r["accepted"], r["rejected"], r["updates_accepted"], r["misbehaviour"])
            for r in records] == [("sealed", 4, 0, 4, [])] * 3, fleet.logs()
    medians, bases = _medians_and_next_bases(fleet.root / "validator-0" / "chain.sqlite")
    assert medians, "no accepted update was a median of its own: the fleet's numerics did not differ"
    assert medians & bases  # an update no edge uploaded became the weights every edge loaded next round
    result = run_module("bmoe", "audit", "--cluster", fleet.root, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "OK:" in result.stdout and "height 3" in result.stdout


def _medians_and_next_bases(chain_file: Path) -> tuple[set[str], set[str]]:
    """Accepted update CIDs that no edge committed, and the base CIDs edges updated from."""
    medians, bases = set(), set()
    with ChainStore(chain_file, readonly=True) as chain:
        for block in chain.iter_blocks():
            committed = {entry["cid"] for tx in block.transactions if tx.kind == "expert_update"
                         for entry in tx.payload["updates"]}
            bases |= {entry["base_cid"] for tx in block.transactions if tx.kind == "expert_update"
                      for entry in tx.payload["updates"]}
            medians |= {decision["cid"] for tx in block.transactions if tx.kind == "update_acceptance"
                        for decision in tx.payload["decisions"] if decision["cid"] not in committed}
    return medians, bases


def test_the_same_fleet_under_exact_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    root = tmp_path / "c"
    result = bmoe_here("cluster", "up", "--dir", root, *FLEET_FLAGS)
    assert result.returncode == 2, result.stdout + result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: honest edges run numeric profiles"), lines
    assert "(default=1,threads2=1,f64=1,mkl-compat=1,chunked=1)" in lines[0]
    assert "comparison exact needs equal bytes" in lines[0] and "--comparison tolerance" in lines[0]
    assert not root.exists() and processes_naming(str(root)) == [] and result.stdout == ""


@pytest.mark.parametrize(("flags", "message"), [
    (("--comparison", "tolerance", "--bound", "-1"), "error: result_bound (tolerance bound of results) must be in"),
    (("--comparison", "tolerance", "--bound", "nan"), "error: result_bound (tolerance bound of results) must be a "
                                                      "finite number, got nan"),
    (("--comparison", "tolerance", "--update-bound", "inf"), "error: update_bound (tolerance bound of updates) "
                                                             "must be a finite number, got inf"),
    (("--bound", "0.001"), "error: --bound need --comparison tolerance (the comparison in force is exact)"),
    (("--comparison", "fuzzy"), "error: comparison must be one of exact, tolerance, integer, got 'fuzzy'"),
])
def test_bad_comparison_flags_are_refused_in_one_line(tmp_path: Path, flags: tuple[str, ...], message: str) -> None:
    result = bmoe_here("cluster", "up", "--dir", tmp_path / "c", "--edges", "4", *flags)
    assert result.returncode == 2, result.stdout + result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(message), lines
    assert not (tmp_path / "c").exists()


def test_a_bad_fleet_is_refused_in_one_line_before_anything_is_written(tmp_path: Path) -> None:
    result = bmoe_here("cluster", "up", "--dir", tmp_path / "c", "--edges", "4", "--fleet", "f64=3")
    assert result.returncode == 2, result.stdout + result.stderr
    assert [line for line in result.stderr.splitlines() if line.strip()] == [
        "error: fleet counts sum to 3, but there are 4 edges (M)"]
    assert not (tmp_path / "c").exists()
