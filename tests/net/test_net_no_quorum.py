"""No quorum on a deployment: two colluders tie two honest edges on every expert of every task, with stake on.
Nobody is slashed, the validator's watch names the stall after ``--stall-after`` tasks, ``bmoe train
--cluster`` stops with exit 3, ``bmoe cluster status`` shows it (exit 3), and the deployment seals exactly
the in-process ledger, which ``bmoe records`` and ``bmoe audit`` read the same."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bmoe.run.session import Session
from tests.net.deploy import cluster_data, run_module, running_cluster


def test_a_tied_deployment_slashes_nobody_and_stops_with_a_named_stall(
        tmp_path_factory: pytest.TempPathFactory) -> None:
    root: Path = tmp_path_factory.mktemp("no-quorum") / "cluster"
    with running_cluster(root, 6.0, "--malicious", "0.5", "--collude", "--stake", "250", "--slash", "100",
                         "--stall-after", "2") as (cluster, _):
        assert cluster.config.stall_after == 2
        train = run_module("bmoe", "train", "--cluster", root, "--rounds", "4", timeout=180)
        assert train.returncode == 3, train.stdout + train.stderr + cluster.logs()
        assert train.stderr.strip().splitlines()[-1].startswith(
            "error: quorum stalled: 2 tasks in a row reached no quorum"), train.stderr
        head = cluster.get("/head")
        assert head["height"] == 2  # both tasks sealed, then the publisher stopped
        stats = cluster.get("/stats")["quorum"]
        assert stats["stalled"] and stats["no_quorum_streak"] == 2 and stats["last_no_quorum"]["sizes"] == [2, 2]
        status = run_module("bmoe", "cluster", "status", "--dir", root, timeout=60)
        assert status.returncode == 3, status.stdout + status.stderr
        assert "STALLED: quorum stalled: 2 tasks in a row" in status.stdout
        with Session(cluster.config.replace(stall_after=0), dataset=cluster_data(cluster),
                     identities=cluster.identities()) as session:  # the cluster's own keys
            session.train(rounds=2)
            assert head["head_hash"] == session.head_hash
        records = run_module("bmoe", "records", root, "--json", timeout=60)
        assert records.returncode == 0, records.stderr
        assert all(row["slashed"] == 0 and row["dissent"] == 0 for row in json.loads(records.stdout)["edges"])
        audit = run_module("bmoe", "audit", "--cluster", root, "--expect-head", head["head_hash"], timeout=120)
        assert audit.returncode == 0, audit.stdout + audit.stderr
