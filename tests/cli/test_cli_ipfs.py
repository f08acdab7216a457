"""`bmoe train|infer --store ipfs` keep a run's objects on a real IPFS node (js-ipfs) and seal the same chain as on
the run directory's own store; `bmoe audit --ipfs-api` checks a run against the node; a CAR of a run directory,
imported with the node's `dag import`, gives the node every object under the same CID. An unreachable node is one
line and exit 2, before anything is written."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from bmoe.storage import DirectoryStore
from bmoe.storage.ipfs import IpfsStore
from bmoe.storage.ipfs_node import IpfsNode
from tests.cli.helpers import assert_user_error, same_run_twice
from tests.cli.in_process import bmoe_here as bmoe
from tests.engines.ipfs import ipfs_node  # noqa: F401

RUN = ["--rounds", "2", "--limit-train", "200", "--limit-test", "100", "--experts", "4", "--top-k", "2", "--edges",
       "4", "--eval-every", "10"]  # digits, 2 rounds of 100 samples: seconds


def _snapshot(run_dir: Path) -> dict[str, bytes]:
    return {str(p.relative_to(run_dir)): p.read_bytes() for p in sorted(run_dir.rglob("*")) if p.is_file()}


def _head(run_dir: Path) -> str:
    return str(json.loads((run_dir / "metrics.json").read_text())["summary"]["head_hash"])


@pytest.fixture(scope="module")
def runs(ipfs_node: IpfsNode, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:  # noqa: F811
    """The same seeded run, once on the IPFS node and once on the run directory's own store."""
    return same_run_twice(tmp_path_factory.mktemp("ipfs-runs"), RUN,
                          ("on-node", ["--store", "ipfs", "--ipfs-api", ipfs_node.api_url]), ("on-disk", []))


def test_a_run_on_the_node_seals_the_same_chain_and_keeps_no_store_directory(runs: tuple[Path, Path]) -> None:
    on_node, on_disk = runs
    assert _head(on_node) == _head(on_disk)
    assert not (on_node / "store").exists()
    config = json.loads((on_node / "config.json").read_text())
    assert config["store"] == "ipfs" and config["ipfs_api"].startswith("http://127.0.0.1:")


def test_inference_and_audit_read_the_objects_from_the_node(runs: tuple[Path, Path], ipfs_node: IpfsNode) -> None:  # noqa: F811
    on_node, _ = runs
    result = bmoe("infer", on_node, "--limit", "50")
    assert result.returncode == 0, result.stderr
    result = bmoe("audit", on_node, "--ipfs-api", ipfs_node.api_url)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"OK: {on_node}")


def test_resuming_on_another_store_is_refused_and_changes_nothing(runs: tuple[Path, Path]) -> None:
    on_node, _ = runs
    before = _snapshot(on_node)
    assert_user_error(bmoe("train", "--run-dir", on_node, "--store", "directory", *RUN),
                      "keeps its objects in store ipfs")
    assert _snapshot(on_node) == before


def test_an_unreachable_node_is_one_line_and_no_run_directory(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    assert_user_error(bmoe("train", "--run-dir", run_dir, "--store", "ipfs", "--ipfs-api", "http://127.0.0.1:1", *RUN),
                      "http://127.0.0.1:1", "unreachable")
    assert not run_dir.exists()


def test_a_run_exported_as_a_car_and_imported_by_the_node_has_every_object_under_its_cid(
        runs: tuple[Path, Path], ipfs_node: IpfsNode, tmp_path: Path) -> None:  # noqa: F811
    _, on_disk = runs
    car = tmp_path / "run.car"
    result = bmoe("export-car", on_disk, "--out", car)
    assert result.returncode == 0, result.stderr
    with car.open("rb") as handle:
        reply = httpx.post(f"{ipfs_node.api_url}/api/v0/dag/import", params={"pin-roots": "true"}, timeout=60,
                           files={"file": ("run.car", handle, "application/vnd.ipld.car")})
    assert reply.status_code == 200, reply.text
    disk = DirectoryStore(on_disk / "store", create=False)
    with IpfsStore(ipfs_node.api_url) as node:
        for cid in disk.cids():
            assert node.get(cid) == disk.get(cid)  # the node's copy, verified here against the same CID
    result = bmoe("audit", on_disk, "--ipfs-api", ipfs_node.api_url)
    assert result.returncode == 0, result.stderr
