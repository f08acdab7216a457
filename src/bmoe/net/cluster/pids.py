"""Which live local processes are a cluster's: the pid ``cluster.json`` records, or one restarted by hand.

Owns the rule ``cluster status``, ``down``, ``restart`` and ``up`` (refusing a busy directory) use
to find a cluster's process. The recorded pid and start time come first. If that process is gone,
an operator may have started the role again by hand (docs/deployment.md), with the recorded
command line or with ``bmoe store|validator|edge`` and the same files. Such a process is taken for
the record only if all of these hold, so an unrelated process is never reported or killed:

* it runs the record's role: ``python -m bmoe.net.ROLE`` or ``bmoe ROLE``;
* an argument names a path inside the cluster directory (relative paths resolved against the
  process's working directory);
* a store or validator listens on the record's port (``/proc/PID/net/tcp*`` and its socket inodes);
  an edge names the record's key file, or ``--cluster-dir`` with the record's ``--index``.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from bmoe.net.cluster.proc_scan import LocalProcess, listening_ports, local_processes
from bmoe.net.cluster.processes import alive
from bmoe.net.cluster_file import ClusterDescription, ProcessRecord


@dataclass(frozen=True)
class Running:
    """A live process of the cluster; ``recorded`` says whether ``cluster.json`` has its pid."""

    name: str
    pid: int
    start_time: int | None
    recorded: bool


def _runs_role(argv: Sequence[str], role: str) -> bool:
    if f"bmoe.net.{role}" in argv:
        return True
    return any(arg == role and Path(before).name == "bmoe" for before, arg in itertools.pairwise(argv))


def _paths(process: LocalProcess) -> set[Path]:
    """Every argument (or the value after ``=``) read as a path, absolute, resolved against the cwd."""
    base = process.cwd or Path("/")
    found = set()
    for arg in process.argv[1:]:
        for text in {arg, arg.partition("=")[2]} - {""}:
            found.add(Path(os.path.normpath(base / text)))
    return found


def _flag_value(argv: Sequence[str], flag: str) -> str | None:
    for i, arg in enumerate(argv):
        if arg == flag and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith(flag + "="):
            return arg.partition("=")[2]
    return None


def _is_record(process: LocalProcess, record: ProcessRecord, root: Path) -> bool:
    if not _runs_role(process.argv, record.role):
        return False
    paths = _paths(process)
    if not any(path == root or root in path.parents for path in paths):
        return False
    if record.url is not None:
        port = urlsplit(record.url).port
        return port is not None and port in listening_ports(process.pid)
    if record.key and root / record.key in paths:  # an edge its operator runs has no key file here
        return True
    return _flag_value(process.argv, "--cluster-dir") is not None and _flag_value(
        process.argv, "--index") == str(record.index)


def find_running(cluster: ClusterDescription) -> list[Running]:
    """Every live process of ``cluster``, by its record and by search, in the order of the records."""
    root = Path(os.path.normpath(cluster.root.resolve()))
    found = []
    others: list[LocalProcess] | None = None
    for record in cluster.processes:
        if alive(record.pid, record.start_time):
            assert record.pid is not None
            found.append(Running(record.name, record.pid, record.start_time, True))
            continue
        if others is None:  # scan /proc once, and only when some record's process is gone
            others = list(local_processes())
        found += [Running(record.name, p.pid, p.start_time, False) for p in others if _is_record(p, record, root)]
    return found
