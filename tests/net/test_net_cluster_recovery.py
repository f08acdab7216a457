"""Recovery on a real cluster: ``cluster restart NAME``, and ``status``/``down`` after a restart by hand.

One ``cluster up`` (2 stores, a PoW validator, 4 edges). A store and the validator are killed with
``kill -9`` and brought back twice: by ``bmoe cluster restart NAME``, which records the new pids,
and by hand with the command lines ``cluster.json`` records (which it does not), after which
``status`` still reports them running and ``down`` still stops them. A process that merely listens
on a cluster port is neither reported nor killed.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bmoe.net.cluster.processes import alive, start_time
from tests.net.deploy import LocalCluster, processes_naming, run_module, running_cluster

PYTHON_M = 3  # recorded command lines start with [python, "-m", "bmoe.net.ROLE"]


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    with running_cluster(tmp_path_factory.mktemp("recovery") / "cluster", 5.0) as (cluster, _):
        yield cluster


def cluster_command(cluster: LocalCluster, *args: str) -> subprocess.CompletedProcess[str]:
    return run_module("bmoe", "cluster", args[0], "--dir", cluster.root, *args[1:], timeout=90)


def status_lines(cluster: LocalCluster) -> tuple[int, dict[str, str]]:
    """``cluster status``: its exit status and each process's line."""
    result = cluster_command(cluster, "status")
    names = {record.name for record in cluster.description.processes}
    lines = {line.split()[0]: line for line in result.stdout.splitlines() if line.split() and line.split()[0] in names}
    assert set(lines) == names, result.stdout + result.stderr
    return result.returncode, lines


def by_hand(cluster: LocalCluster, name: str, *, as_bmoe_command: bool = False) -> subprocess.Popen[bytes]:
    """Start ``name`` again as an operator would: its recorded command line (or ``bmoe ROLE`` with the same
    flags), in a session of its own, without telling ``cluster.json``."""
    record = cluster.description.process(name)
    argv = record.argv
    if as_bmoe_command:
        argv = [sys.executable, str(Path(sys.executable).with_name("bmoe")), record.role, *argv[PYTHON_M:]]
    log = open(cluster.root / "logs" / f"{name}.by-hand.log", "ab")  # noqa: SIM115 (the process keeps it)
    with log:
        return subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)


def wait_healthy(cluster: LocalCluster, name: str, proc: subprocess.Popen[bytes]) -> None:
    url = cluster.description.process(name).url
    deadline = time.monotonic() + 60
    while True:
        assert proc.poll() is None and time.monotonic() < deadline, cluster.logs()
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return
        time.sleep(0.1)


def test_cluster_restart_brings_back_a_killed_store_and_validator_and_records_their_pids(
        deployed: LocalCluster) -> None:
    before = {name: deployed.description.process(name).pid for name in ("store-1", "validator-0", "edge-0")}
    deployed.kill("store-1")
    deployed.kill("validator-0")
    for name in ("store-1", "validator-0", "edge-0"):  # edge-0 is running: restart stops it first
        result = cluster_command(deployed, "restart", name, "--grace", "2")
        assert result.returncode == 0 and "ready" in result.stdout, result.stdout + result.stderr + deployed.logs()
    for name, old in before.items():
        record = deployed.description.process(name)
        assert record.pid != old and alive(record.pid, record.start_time), name
        assert not alive(old), name
    code, lines = status_lines(deployed)
    assert code == 0, lines
    assert "running, healthy" in lines["store-1"] and "running, healthy" in lines["validator-0"]


def test_status_and_down_find_a_store_and_a_validator_restarted_by_hand(deployed: LocalCluster) -> None:
    deployed.kill("store-0")
    deployed.kill("validator-0")
    store = by_hand(deployed, "store-0")
    validator: subprocess.Popen[bytes] | None = None
    try:
        wait_healthy(deployed, "store-0", store)  # the validator checks its stores as it starts
        validator = by_hand(deployed, "validator-0", as_bmoe_command=True)
        wait_healthy(deployed, "validator-0", validator)
        code, lines = status_lines(deployed)
        assert code == 0, lines
        for name, proc in (("store-0", store), ("validator-0", validator)):
            assert "running (by hand), healthy" in lines[name] and f"pid {proc.pid} " in lines[name], lines[name]
        down = cluster_command(deployed, "down", "--grace", "5")
        assert down.returncode == 0, down.stdout + down.stderr
        assert store.wait(timeout=10) is not None and validator.wait(timeout=10) is not None
        assert processes_naming(str(deployed.root)) == []
    finally:
        for proc in (store, validator):
            if proc is not None and proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)


def test_a_process_that_only_listens_on_a_cluster_port_is_neither_reported_nor_stopped(
        deployed: LocalCluster) -> None:
    record = deployed.description.process("store-0")  # the cluster is down: its port is free
    port = record.url.rsplit(":", 1)[1] if record.url else ""
    decoy = subprocess.Popen([sys.executable, "-m", "http.server", port, "--bind", "127.0.0.1",
                              "--directory", str(deployed.root)], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    try:
        started = start_time(decoy.pid)
        code, lines = status_lines(deployed)
        assert code == 1 and "stopped" in lines["store-0"], lines
        assert cluster_command(deployed, "down", "--grace", "1").returncode == 0
        assert alive(decoy.pid, started)
    finally:
        decoy.kill()
        decoy.wait(timeout=10)
