"""Detached service processes: start one with its output in a log file, tell whether it lives, stop it.

Owns process lifetime for ``bmoe cluster``. Each process starts in its own session (so its process
group is its pid and survives the command that started it). A process is identified by its pid and
its start time in clock ticks (``/proc/PID/stat`` field 22), so a recycled pid is never taken for
it; a zombie counts as gone. Stopping sends SIGTERM to the group, waits a grace period, then sends
SIGKILL, and reports whatever is still alive.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

DEFAULT_GRACE_S = 10.0


def spawn(argv: Sequence[str], log: Path) -> tuple[int, int | None]:
    """Start ``argv`` detached, stdout and stderr appended to ``log``; ``(pid, start time)``."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as handle:
        proc = subprocess.Popen(list(argv), stdout=handle, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True, close_fds=True)
    return proc.pid, start_time(proc.pid)


def _stat(pid: int) -> list[str] | None:
    """Fields 3.. of ``/proc/PID/stat`` (after the command name), or None if unreadable."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text.rsplit(")", 1)[1].split()


def start_time(pid: int) -> int | None:
    fields = _stat(pid)
    return int(fields[19]) if fields and len(fields) > 19 else None


def cpu_seconds(pid: int | None) -> float | None:
    """CPU seconds (user + system, ``/proc/PID/stat`` fields 14 and 15) the process has used so far, or
    None if unreadable. Unlike its wall-clock timers, this does not grow while it waits for a core."""
    fields = _stat(pid) if pid is not None else None
    if not fields or len(fields) <= 12:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _reap(pid: int) -> None:
    """Collect ``pid``'s exit status if it is our child (a no-op otherwise)."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def alive(pid: int | None, started: int | None = None) -> bool:
    """Whether the process ``pid`` (started at ``started``) is still running (zombies are not)."""
    if pid is None:
        return False
    _reap(pid)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    fields = _stat(pid)
    if fields is None:
        return not Path("/proc").is_dir()  # without /proc, trust the signal check
    if fields[0] in ("Z", "X"):
        return False
    return started is None or int(fields[19]) == started


def _signal(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


def stop(processes: Sequence[tuple[int | None, int | None]], grace: float = DEFAULT_GRACE_S) -> list[int]:
    """SIGTERM each live process's group, SIGKILL what is left after ``grace`` s; the pids still alive after."""
    live = [(pid, started) for pid, started in processes if pid is not None and alive(pid, started)]
    for pid, _ in live:
        _signal(pid, signal.SIGTERM)
    _wait_gone(live, grace)
    for pid, started in live:
        if alive(pid, started):
            _signal(pid, signal.SIGKILL)
    _wait_gone(live, 5.0)
    return [pid for pid, started in live if alive(pid, started)]  # type: ignore[misc]


def kill_now(pid: int | None, started: int | None = None) -> None:
    """SIGKILL one process group (``kill -9``) if it is still the process recorded."""
    if pid is not None and alive(pid, started):
        _signal(pid, signal.SIGKILL)
        _wait_gone([(pid, started)], 5.0)


def _wait_gone(processes: Sequence[tuple[int | None, int | None]], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(alive(pid, started) for pid, started in processes):
        time.sleep(0.05)
