"""A live cluster's health as ``bmoe cluster status`` sees it: each process, and each validator's head.

Owns asking the processes, each read with a short timeout so a dead one costs little: which are
running (``net/cluster/pids``, which also finds one restarted by hand), whether each listening one
answers ``/health`` (an engine its own probe), each validator's head, view (PBFT) and when each edge
last polled it (signed requests, with the publisher's key). Never changes anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from bmoe.ledger.keys import load_identity
from bmoe.net.cluster.engines import ENGINE, engine_ready
from bmoe.net.cluster.pids import Running, find_running
from bmoe.net.cluster_file import ClusterDescription, ProcessRecord
from bmoe.net.errors import NetError, UnauthenticResponse
from bmoe.net.http.auth import SignedAuth

TIMEOUT_S = 2.0


@dataclass(frozen=True)
class ProcessHealth:
    name: str
    role: str
    url: str | None
    pid: int | None
    state: str  # running | running (by hand) | stopped
    answering: bool | None  # None: nothing to ask (an edge, or a stopped process)
    polled_s_ago: float | None = None  # an edge: when it last asked a validator for work


@dataclass(frozen=True)
class ValidatorHead:
    name: str
    height: int | None  # None: not answering
    head_hash: str | None
    task_count: int | None = None
    train_tasks: int | None = None
    view: int | None = None  # PBFT
    primary: str | None = None


def _get(client: httpx.Client, url: str) -> dict[str, Any]:
    try:
        reply = client.get(url)
    except (httpx.HTTPError, UnauthenticResponse, NetError):
        return {}
    try:
        body = reply.json() if reply.status_code == 200 else {}
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _client(cluster: ClusterDescription) -> httpx.Client:
    auth = SignedAuth(load_identity(cluster.path(cluster.publisher_key)),
                      trusted=[v.address for v in cluster.by_role("validator")])
    return httpx.Client(auth=auth, timeout=TIMEOUT_S)


def _answering(client: httpx.Client, record: ProcessRecord) -> bool:
    if record.role == ENGINE:
        return engine_ready(record)()
    try:
        return httpx.get(f"{record.url}/health", timeout=TIMEOUT_S).status_code == 200
    except httpx.HTTPError:
        return False


def cluster_health(cluster: ClusterDescription) -> tuple[list[ProcessHealth], list[ValidatorHead]]:
    """Every process of ``cluster`` in its recorded order, and every validator's head."""
    found: dict[str, Running] = {}
    for running in find_running(cluster):
        found.setdefault(running.name, running)
    validators = cluster.by_role("validator")
    with _client(cluster) as client:
        polled: dict[str, float] = {}
        heads = []
        for record in validators:
            stats = _get(client, f"{record.url}/stats")
            polled.update(stats.get("edges_last_polled_s_ago", {}))
            head = _get(client, f"{record.url}/head")
            primary = _get(client, f"{record.url}/primary") if len(validators) > 1 else {}
            heads.append(ValidatorHead(record.name, head.get("height"), head.get("head_hash"), head.get("task_count"),
                                       head.get("train_tasks"), primary.get("view"), primary.get("primary")))
        processes = []
        for record in cluster.processes:
            running = found.get(record.name)
            state = "stopped" if running is None else "running" if running.recorded else "running (by hand)"
            answering = _answering(client, record) if running is not None and record.url else None
            processes.append(ProcessHealth(record.name, record.role, record.url,
                                           running.pid if running else record.pid, state, answering,
                                           polled.get(record.name) if running is not None else None))
    return processes, heads
