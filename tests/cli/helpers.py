"""Run the real ``bmoe`` command in a subprocess (``tests.cli.in_process``: the same in this process)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SMALL = ["--dataset", "synthetic", "--experts", "4", "--top-k", "2", "--edges", "5", "--batch-size", "32",
         "--difficulty", "4", "--eval-every", "100"]


def command_environment(columns: int) -> dict[str, str]:
    """The environment a ``bmoe`` command runs with in the tests, in a subprocess or in process: nothing of the
    test runner's but where to find programs and code."""
    env = {"COLUMNS": str(columns), "PATH": "/usr/bin:/bin", "HOME": str(Path.home())}
    if os.environ.get("PYTHONPATH"):  # a worktree's src under test: the child runs the same code
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    return env


def bmoe(*args: str | Path, cwd: Path | None = None, timeout: float = 300,
         columns: int = 200) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bmoe", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, cwd=cwd, env=command_environment(columns))


def assert_user_error(result: subprocess.CompletedProcess[str], *needles: str) -> None:
    """Exit status 2, one line on stderr naming the problem, no traceback."""
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


def same_run_twice(root: Path, run: list[str], first: tuple[str, list[str]],
                   second: tuple[str, list[str]]) -> tuple[Path, Path]:
    """``bmoe train`` the same seeded ``run`` in two run directories under ``root``, each named with its own
    extra flags (for example on a real engine and on bmoe's own); both must succeed."""
    directories = []
    for name, extra in (first, second):
        directory = root / name
        result = bmoe("train", "--run-dir", directory, *extra, *run)
        assert result.returncode == 0, result.stderr
        directories.append(directory)
    return directories[0], directories[1]
