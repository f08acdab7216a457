"""PBFT across 4 validator processes (``bmoe cluster up --consensus pbft --validators 4``).

The rounds seal with identical chains on every validator, the same head hash as an in-process PBFT
run, and each chain passes the audit with its commit certificates. ``kill -9`` of a backup does not
stop the rounds (f = 1), and once restarted it catches up from its peers to the same head.
``kill -9`` of the primary: the backups vote it out after the task timeout and the new primary runs
the round; restarted, the old primary learns the new view from its peers, catches up and seals the
next round with them. The publisher, inference and ``cluster status`` address every validator.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from bmoe.ledger.audit import audit
from bmoe.ledger.chainstore import ChainStore
from bmoe.net.http.auth import SignedAuth
from bmoe.net.store.client import HttpBlobStore
from bmoe.run.session import Session
from tests.net.deploy import LocalCluster, cluster_data, pbft_cluster, run_module

EDGE_TIMEOUT_S = 6.0


@pytest.fixture(scope="module")
def pbft(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    yield from pbft_cluster(tmp_path_factory, 4, EDGE_TIMEOUT_S)


def heads(cluster: LocalCluster, names: list[str] | None = None) -> dict[str, tuple[int, str]]:
    trusted = cluster.validator_addresses
    out = {}
    with httpx.Client(auth=SignedAuth(cluster.publisher, trusted), timeout=10.0) as client:
        for record in cluster.description.by_role("validator"):
            if names is not None and record.name not in names:
                continue
            head = client.get(f"{record.url}/head").json()
            out[record.name] = (head["height"], head["head_hash"])
    return out


def wait_heads_equal(cluster: LocalCluster, height: int, timeout: float = 30.0,
                     names: list[str] | None = None) -> dict[str, tuple[int, str]]:
    deadline = time.monotonic() + timeout
    while True:
        seen = heads(cluster, names)
        if len(set(seen.values())) == 1 and next(iter(seen.values()))[0] == height:
            return seen
        assert time.monotonic() < deadline, f"{seen}\n{cluster.logs()}"
        time.sleep(0.2)


def view_of(cluster: LocalCluster, name: str) -> int:
    record = cluster.description.process(name)
    with httpx.Client(auth=SignedAuth(cluster.publisher, [record.address]), timeout=10.0) as client:
        return int(client.get(f"{record.url}/primary").json()["view"])


def audit_chain(cluster: LocalCluster, name: str) -> None:
    with ChainStore(cluster.root / name / "chain.sqlite") as chain, \
            HttpBlobStore(cluster.description.stores, cluster.publisher) as store:
        report = audit(chain, store)
    assert report.pbft_blocks == chain_height(cluster, name) == report.height, report


def chain_height(cluster: LocalCluster, name: str) -> int:
    return heads(cluster, [name])[name][0]


def test_four_validators_seal_identical_chains_equal_to_an_in_process_pbft_run(pbft: LocalCluster) -> None:
    records = pbft.publish(3, cluster_data(pbft), timeout=90)
    assert [r["height"] for r in records] == [1, 2, 3]
    seen = wait_heads_equal(pbft, 3)
    for name in seen:
        audit_chain(pbft, name)
    # 4 simulated PBFT validators with the cluster's fresh keys (the deployed validators 1-3 hold only their
    # own, and started from the genesis validator-0 wrote)
    with Session(pbft.config, dataset=cluster_data(pbft), identities=pbft.identities()) as session:
        session.train(rounds=3)
        assert {head for _, head in seen.values()} == {session.head_hash}


def test_a_killed_backup_does_not_stop_the_rounds(pbft: LocalCluster) -> None:
    pbft.kill("validator-3")  # view 0's primary is validator-0: validator-3 is a backup
    records = pbft.publish(2, cluster_data(pbft), timeout=90)
    assert [r["height"] for r in records] == [4, 5]
    live = heads(pbft, ["validator-0", "validator-1", "validator-2"])
    assert len(set(live.values())) == 1 and next(iter(live.values()))[0] == 5, live
    for name in live:
        audit_chain(pbft, name)


def test_a_restarted_backup_catches_up_from_its_peers(pbft: LocalCluster) -> None:
    pbft.restart("validator-3")  # down for blocks 4 and 5; its chain on disk ends at 3
    wait_heads_equal(pbft, 5)
    audit_chain(pbft, "validator-3")
    records = pbft.publish(1, cluster_data(pbft), timeout=90)
    assert [r["height"] for r in records] == [6]
    wait_heads_equal(pbft, 6)


def test_a_killed_primary_is_voted_out_and_the_round_completes(pbft: LocalCluster) -> None:
    pbft.kill("validator-0")  # view 0's primary: the backups see the task go unsealed, and change view
    records = pbft.publish(1, cluster_data(pbft), timeout=90)
    assert [r["height"] for r in records] == [7]
    live = wait_heads_equal(pbft, 7, names=["validator-1", "validator-2", "validator-3"])
    for name in live:
        audit_chain(pbft, name)
    assert all(view_of(pbft, name) >= 1 for name in live)


def test_the_restarted_old_primary_joins_the_new_view_and_catches_up(pbft: LocalCluster) -> None:
    pbft.restart("validator-0")  # it comes back believing it leads view 0; its peers tell it otherwise
    wait_heads_equal(pbft, 7)
    assert view_of(pbft, "validator-0") == view_of(pbft, "validator-1") >= 1
    records = pbft.publish(1, cluster_data(pbft), timeout=90)
    assert [r["height"] for r in records] == [8]
    for name in wait_heads_equal(pbft, 8):
        audit_chain(pbft, name)


def test_publish_infer_and_status_address_every_validator(pbft: LocalCluster) -> None:
    served = run_module("bmoe.net.publish", "--cluster-dir", pbft.root, "--infer", "--limit", "32", timeout=120)
    assert served.returncode == 0, served.stdout + served.stderr
    assert "inference accuracy" in served.stdout and "sealed at height 9" in served.stdout
    status = run_module("bmoe", "cluster", "status", "--dir", pbft.root, timeout=60)
    assert status.returncode == 0, status.stdout + status.stderr
    heads_shown = [line for line in status.stdout.splitlines() if ": head " in line]
    assert [line.split(":")[0] for line in heads_shown] == ["validator-0", "validator-1", "validator-2", "validator-3"]
    assert all("at height 9, view 1 (primary validator-1)" in line for line in heads_shown), status.stdout
