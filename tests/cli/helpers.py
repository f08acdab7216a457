"""Run the real ``bmoe`` command in a subprocess."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SMALL = ["--dataset", "synthetic", "--experts", "4", "--top-k", "2", "--edges", "5", "--batch-size", "32",
         "--difficulty", "4", "--eval-every", "100"]


def bmoe(*args: str | Path, cwd: Path | None = None, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bmoe", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, cwd=cwd, env={"COLUMNS": "200", "PATH": "/usr/bin:/bin",
                                                         "HOME": str(Path.home())})


def assert_user_error(result: subprocess.CompletedProcess[str], *needles: str) -> None:
    """Exit status 2, one line on stderr naming the problem, no traceback."""
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
