"""What ``/proc`` tells about the local processes: command line, working directory, listening TCP ports.

Owns reading ``/proc`` (Linux) for :mod:`bmoe.net.cluster.pids`; knows nothing of clusters. A
process's listening ports are the LISTEN sockets of its own network namespace
(``/proc/PID/net/tcp`` and ``tcp6``) whose inode is one of its open descriptors
(``/proc/PID/fd/N -> socket:[INODE]``). A process that vanishes or cannot be read is skipped: every
reader returns None or an empty set rather than raising.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from bmoe.net.cluster.processes import alive, start_time

PROC = Path("/proc")
_LISTEN = "0A"  # TCP state LISTEN in /proc/net/tcp


@dataclass(frozen=True)
class LocalProcess:
    pid: int
    start_time: int | None
    argv: list[str]
    cwd: Path | None


def command_line(pid: int) -> list[str] | None:
    try:
        raw = (PROC / str(pid) / "cmdline").read_bytes()
    except OSError:
        return None
    return [part.decode(errors="surrogateescape") for part in raw.split(b"\0")[:-1]] or None


def working_directory(pid: int) -> Path | None:
    try:
        return Path(os.readlink(PROC / str(pid) / "cwd"))
    except OSError:
        return None


def local_processes() -> Iterator[LocalProcess]:
    """Every live process but this one whose command line can be read (kernel threads have none)."""
    if not PROC.is_dir():
        return
    for entry in PROC.iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        pid = int(entry.name)
        argv = command_line(pid)
        if argv is not None and alive(pid):
            yield LocalProcess(pid, start_time(pid), argv, working_directory(pid))


def _socket_inodes(pid: int) -> set[str]:
    inodes = set()
    try:
        descriptors = list((PROC / str(pid) / "fd").iterdir())
    except OSError:
        return set()
    for fd in descriptors:
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    return inodes


def listening_ports(pid: int) -> set[int]:
    """TCP ports (IPv4 and IPv6) on which ``pid`` itself holds a listening socket."""
    mine = _socket_inodes(pid)
    ports = set()
    for table in ("tcp", "tcp6"):
        try:
            lines = (PROC / str(pid) / "net" / table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 9 and fields[3] == _LISTEN and fields[9] in mine:
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports
