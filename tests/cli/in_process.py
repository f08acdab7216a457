"""Run ``bmoe.cli.main`` in this process, as the ``bmoe`` command would run: its exit status and output."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bmoe.cli import main


def bmoe_here(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
              *args: str | Path) -> subprocess.CompletedProcess[str]:
    """``bmoe ARGS`` through ``bmoe.cli.main`` in-process; shaped like a finished process for ``assert_user_error``."""
    argv = ["bmoe", *map(str, args)]
    monkeypatch.setattr(sys, "argv", argv)
    capsys.readouterr()
    code: int | str | None = 0
    try:
        main()
    except SystemExit as exit_info:
        code = exit_info.code
    out = capsys.readouterr()
    return subprocess.CompletedProcess(argv, code if isinstance(code, int) else 1, out.out, out.err)
