"""A whole deployment on 127.0.0.1 for the tests: ``bmoe cluster`` as a subprocess, and what tests need around it.

``LocalCluster`` runs ``python -m bmoe cluster up`` with a small seeded config, reads the
``cluster.json`` it writes, kills and restarts single processes, talks to the validator with the
publisher's key, and always stops every process the cluster started (``stop_everything``), checking
by pid and by scanning ``/proc`` for any process that names the cluster's directory.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bmoe.data import Dataset, load_dataset
from bmoe.ledger.keys import Identity, load_identity
from bmoe.net.cluster.processes import alive, kill_now, spawn
from bmoe.net.cluster_file import ClusterDescription, load_cluster
from bmoe.net.http.auth import SignedAuth
from bmoe.net.publish.command import publish_inference, publish_training
from bmoe.run.config import RunConfig, from_dict
from bmoe.run.setup import Identities, derive_identities, participant_names

# N=4 experts, K=2, M=4 edges (the last one attacks with Gaussian noise, probability 1), 32-sample tasks
CLUSTER_FLAGS = ("--edges", "4", "--stores", "2", "--experts", "4", "--top-k", "2", "--batch-size", "32",
                 "--hidden", "16", "--dataset", "synthetic", "--malicious", "0.25", "--attack", "gaussian",
                 "--attack-param", "probability=1", "--seed", "11", "--difficulty", "4")
UP_TIMEOUT_S = 120


def run_module(module: str, *args: str | Path, timeout: float = UP_TIMEOUT_S) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", module, *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def processes_naming(text: str) -> list[int]:
    """Pids of live (non-zombie) processes whose command line contains ``text``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmdline and alive(int(entry.name)):
            found.append(int(entry.name))
    return found


class LocalCluster:
    def __init__(self, root: Path, edge_timeout: float) -> None:
        self.root = root
        self.edge_timeout = edge_timeout

    def up(self, *extra: str) -> subprocess.CompletedProcess[str]:
        result = run_module("bmoe", "cluster", "up", "--dir", self.root, *CLUSTER_FLAGS,
                            "--edge-timeout", str(self.edge_timeout), *extra)
        assert result.returncode == 0, result.stdout + result.stderr + self.logs()
        return result

    def logs(self) -> str:
        return "".join(f"\n--- {log.name}\n{log.read_text()[-2000:]}" for log in sorted(self.root.glob("logs/*.log")))

    @property
    def description(self) -> ClusterDescription:
        return load_cluster(self.root)

    @property
    def config(self) -> RunConfig:
        return from_dict(json.loads((self.root / "config.json").read_text()))

    @property
    def publisher(self) -> Identity:
        return load_identity(self.description.path(self.description.publisher_key))

    def key(self, name: str) -> Identity:
        """The key the cluster made for ``name`` (a process, or the publisher)."""
        cluster = self.description
        return load_identity(cluster.path(cluster.publisher_key if name == "publisher" else cluster.process(name).key))

    def identities(self) -> Identities:
        """Every participant with the key the cluster made for it: an in-process run with these keys seals the
        cluster's chain block for block (Ed25519 signatures are deterministic)."""
        config = self.config
        held = {name: self.key(name) for name in participant_names(config)}
        ids = Identities(held["publisher"], tuple(held[f"validator-{i}"] for i in range(config.validators)),
                         tuple(held[f"edge-{i}"] for i in range(config.edges_in_play)))
        derived = [p.address for p in derive_identities(config).everyone()]
        return dataclasses.replace(ids, seeded=[p.address for p in ids.everyone()] == derived)

    @property
    def validator_addresses(self) -> list[str]:
        """The validators' enrolled addresses (fresh keys unless the cluster was brought up --seeded-keys)."""
        return [r.address for r in self.description.by_role("validator")]

    def client(self, identity: Identity | None = None) -> httpx.Client:
        trusted = self.validator_addresses[:1]
        return httpx.Client(auth=SignedAuth(identity or self.publisher, trusted), timeout=30.0)

    def get(self, path: str) -> dict[str, Any]:
        with self.client() as client:
            reply = client.get(f"{self.description.validator}{path}")
        assert reply.status_code == 200, reply.text
        return dict(reply.json())

    @property
    def validator_urls(self) -> list[str]:
        """Every validator's URL (one under PoW): the publisher posts to each."""
        return [r.url for r in self.description.by_role("validator") if r.url]

    def publish(self, rounds: int, data: Any, timeout: float = 60) -> list[dict[str, Any]]:
        return publish_training(self.validator_urls, self.publisher, self.config, data,
                                rounds, timeout=timeout, validators=self.validator_addresses)

    def infer(self, data: Any, limit: int) -> float:
        return publish_inference(self.validator_urls, self.description.stores, self.publisher, self.config, data,
                                 limit=limit, timeout=60, validators=self.validator_addresses)

    def kill(self, name: str) -> None:
        """``kill -9`` one process (its whole group)."""
        record = self.description.process(name)
        kill_now(record.pid, record.start_time)
        assert not alive(record.pid, record.start_time)

    def restart(self, name: str) -> None:
        """Start ``name`` again with the command line the cluster recorded; wait until it is healthy."""
        cluster = self.description
        record = cluster.process(name)
        record.pid, record.start_time = spawn(record.argv, cluster.path(record.log))
        cluster.save()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert alive(record.pid, record.start_time), self.logs()
            try:
                if record.url is None or httpx.get(f"{record.url}/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"{name} not healthy again: {self.logs()}")

    def wait_for_edges(self, timeout: float = 30.0) -> None:
        """Until every edge has polled the validator (after a restart of either)."""
        names = {record.name for record in self.description.by_role("edge")}
        deadline = time.monotonic() + timeout
        while not names <= set(self.get("/stats").get("edges_last_polled_s_ago", {})):
            assert time.monotonic() < deadline, self.logs()
            time.sleep(0.1)

    def pids(self) -> list[tuple[int | None, int | None]]:
        if not (self.root / "cluster.json").exists():
            return []
        return [(r.pid, r.start_time) for r in self.description.processes]

    def stop_everything(self) -> list[int]:
        """Kill whatever the cluster started (by its records and by its directory); pids found still alive."""
        for pid, started in self.pids():
            kill_now(pid, started)
        for pid in processes_naming(str(self.root)):
            kill_now(pid)
        return processes_naming(str(self.root))


@contextlib.contextmanager
def running_cluster(root: Path, edge_timeout: float, *extra: str) -> Iterator[tuple[LocalCluster, str]]:
    """``cluster up`` (with ``extra`` flags) for a test module: the cluster and what ``up`` printed; afterwards
    every process it started is killed, and none may be left."""
    cluster = LocalCluster(root, edge_timeout)
    try:
        yield cluster, cluster.up(*extra).stdout
    finally:
        left = cluster.stop_everything()
        assert left == [], f"processes left behind: {left}"


def cluster_data(cluster: LocalCluster) -> Dataset:
    config = cluster.config
    return load_dataset(config.dataset, None, config.seed, config.limit_train, config.limit_test)


def pbft_cluster(factory: pytest.TempPathFactory, validators: int, edge_timeout: float) -> Iterator[LocalCluster]:
    """A module's PBFT cluster of ``validators`` validator processes (a fixture's body)."""
    with running_cluster(factory.mktemp(f"pbft{validators}") / "cluster", edge_timeout,
                         "--consensus", "pbft", "--validators", str(validators)) as (cluster, _):
        yield cluster
