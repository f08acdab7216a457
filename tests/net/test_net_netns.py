"""Several hosts: the validator, each edge, each storage node and the publisher in its own network namespace.

Each party gets a namespace ``bmoe-<pid>-<role>`` with one address from 198.18.0.0/15 (RFC 2544) on a
veth bridged in a hub namespace (``tests/net/netns.py``); nothing outside these namespaces is
touched. The cluster is planned with each process's address and an ``ip netns exec`` prefix, started
and trained by a publisher in its own namespace (``tests/net/netns_driver.py``), and must seal the same
ledger head as an in-process run of the same seeded config, with every edge answering. Traffic really
crossed the namespaces: every process runs in its namespace, the validator listens on its namespace's
address, the edges' connections to it come from their own addresses, and every hub port carried bytes.

Skipped, with the reason, where namespaces cannot be made (not root, no ``ip``, ``ip netns add``
refused). The fixture kills every process started and deletes every namespace, whatever happened.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bmoe.data import load_dataset
from bmoe.net.cluster.processes import kill_now
from bmoe.net.cluster_file import load_cluster
from bmoe.net.node_setup import parse_params
from bmoe.run.config import RunConfig, from_dict
from bmoe.run.session import Session
from tests.net.deploy import processes_naming
from tests.net.netns import NetnsError, Topology, unavailable

EDGES, STORES, ROUNDS = 4, 2, 3
EDGE_TIMEOUT_S = 6.0
DRIVER_TIMEOUT_S = 75
# the loopback deployment's config (tests/net/deploy.py CLUSTER_FLAGS): N=4, K=2, M=4, the last edge attacking
CONFIG = {"num_edges": EDGES, "num_experts": 4, "top_k": 2, "batch_size": 32, "hidden": 16, "dataset": "synthetic",
          "malicious_ratio": 0.25, "attack": "gaussian", "attack_params": parse_params(["probability=1"]), "seed": 11,
          "difficulty": 4}
ROLES = {"ctl": 1, "validator-0": 2, **{f"store-{j}": 10 + j for j in range(STORES)},
         **{f"edge-{i}": 20 + i for i in range(EDGES)}}


@pytest.fixture
def topology(tmp_path: Path) -> Iterator[tuple[Topology, Path]]:
    """The namespaces, and the directory the cluster will be written to."""
    reason = unavailable()
    if reason is not None:
        pytest.skip(reason)
    net = Topology(f"bmoe-{os.getpid()}-")
    root = tmp_path / "cluster"
    try:
        try:
            net.create_hub()
        except (NetnsError, OSError, subprocess.TimeoutExpired) as exc:
            pytest.skip(f"network namespaces not permitted here: {exc}")
        for role, host in ROLES.items():
            net.add(role, host)
        yield net, root
    finally:
        if (root / "cluster.json").exists():
            for record in load_cluster(root).processes:
                kill_now(record.pid, record.start_time)
        problems = net.teardown()
        left = processes_naming(str(root))
        assert not problems and not left, f"cleanup: {problems}, processes left: {left}"


def run_driver(net: Topology, root: Path) -> dict[str, object]:
    spec = root.parent / "spec.json"
    spec.write_text(json.dumps({
        "root": str(root), "config": from_dict({**RunConfig().to_dict(), **CONFIG}).to_dict(), "stores": STORES,
        "rounds": ROUNDS, "edge_timeout": EDGE_TIMEOUT_S,
        "hosts": {role: address for role, address in net.addresses.items() if role != "ctl"},
        "wrap": {role: net.exec_prefix(role) for role in ROLES if role != "ctl"},
    }))
    driver = Path(__file__).with_name("netns_driver.py")
    result = subprocess.run([*net.exec_prefix("ctl"), sys.executable, str(driver), str(spec)], capture_output=True,
                            text=True, timeout=DRIVER_TIMEOUT_S, stdin=subprocess.DEVNULL)
    logs = "".join(f"\n--- {log.name}\n{log.read_text()[-1500:]}" for log in sorted(root.glob("logs/*.log")))
    assert result.returncode == 0, result.stdout + result.stderr + logs
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


def peers_of(net: Topology, role: str, port: int, wait: float = 10.0, expect: set[str] | None = None) -> set[str]:
    """Remote addresses of established TCP connections to ``port`` inside ``role``'s namespace (polled)."""
    seen: set[str] = set()
    deadline = time.monotonic() + wait
    while True:
        out = subprocess.run([*net.exec_prefix(role), "ss", "-Htn", "state", "established", f"( sport = :{port} )"],
                             capture_output=True, text=True, timeout=10).stdout
        seen |= {line.split()[-1].rsplit(":", 1)[0] for line in out.splitlines() if line.strip()}
        if expect is None or expect <= seen or time.monotonic() > deadline:
            return seen
        time.sleep(0.1)


def test_rounds_across_network_namespaces_seal_the_in_process_ledger(topology: tuple[Topology, Path]) -> None:
    net, root = topology
    outcome = run_driver(net, root)
    cluster = load_cluster(root)
    config = from_dict(json.loads((root / "config.json").read_text()))

    # every process runs in its own namespace; stores and validator listen on their namespace's address
    for record in cluster.processes:
        assert net.namespace_of(record.pid) == net.namespace(record.name), record.name
    assert cluster.validator == f"http://{net.addresses['validator-0']}:{cluster.validator.rsplit(':', 1)[1]}"
    assert cluster.stores == [f"http://{net.addresses[f'store-{j}']}:{url.rsplit(':', 1)[1]}"
                              for j, url in enumerate(cluster.stores)]
    assert f"inet {net.addresses['validator-0']}/24" in net.ip("-o", "addr", "show", "dev", "eth0",
                                                                netns=net.namespace("validator-0"))

    # the rounds sealed with every edge answering, and the same ledger as in-process
    records = outcome["records"]
    assert isinstance(records, list) and [r["height"] for r in records] == [1, 2, 3]
    assert all(r["status"] == "sealed" and r["accepted"] == EDGES for r in records)
    head = outcome["head"]
    assert isinstance(head, dict) and head["height"] == ROUNDS and head["train_tasks"] == ROUNDS
    data = load_dataset(config.dataset, None, config.seed, config.limit_train, config.limit_test)
    session = Session(config, dataset=data)
    session.train(rounds=ROUNDS)
    assert head["head_hash"] == session.head_hash

    # the edges reached the validator across the bridge, from their own addresses
    stats = outcome["stats"]
    assert isinstance(stats, dict) and set(stats["edges_last_polled_s_ago"]) == {f"edge-{i}" for i in range(EDGES)}
    edge_addresses = {net.addresses[f"edge-{i}"] for i in range(EDGES)}
    validator_port = int(cluster.validator.rsplit(":", 1)[1])
    assert edge_addresses <= peers_of(net, "validator-0", validator_port, expect=edge_addresses)
    for role in ROLES:
        rx, tx = net.hub_port_bytes(role)
        assert rx > 10_000 and tx > 10_000, (role, rx, tx)  # tasks, weights and results went through the hub
