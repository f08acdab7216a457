"""Run ``bmoe.cli.main`` in this process, as the ``bmoe`` command would run: its exit status and output.

In-process, the code under test is the one this test session imports (a worktree's ``src`` on
``PYTHONPATH``), and no interpreter start is paid per command.
"""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from unittest import mock

from bmoe.cli import main


@contextlib.contextmanager
def _environment(changes: Mapping[str, str]) -> Iterator[None]:
    with mock.patch.dict(os.environ, changes):
        yield


def bmoe_here(*args: str | Path, env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``bmoe ARGS`` through ``bmoe.cli.main`` in-process (``env``: variables set for it); shaped like a
    finished process, for ``tests.cli.helpers.assert_user_error``."""
    argv = ["bmoe", *map(str, args)]
    out, err = io.StringIO(), io.StringIO()
    code: int | str | None = 0
    with mock.patch.object(sys, "argv", argv), _environment(env or {}), contextlib.redirect_stdout(out), \
            contextlib.redirect_stderr(err):
        try:
            main()
        except SystemExit as exit_info:
            code = exit_info.code
    return subprocess.CompletedProcess(argv, code if isinstance(code, int) else 1, out.getvalue(), err.getvalue())
