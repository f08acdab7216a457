"""``tests.cli.in_process`` answers as the real ``bmoe`` process does: the same exit status, output and
one-line errors, and nothing of a command's process-wide changes left behind. These are also the suite's
real-process smoke tests of the command line (the other "one line, exit 2" tests run in process)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import torch

from tests.cli.helpers import SMALL, assert_user_error, bmoe
from tests.cli.in_process import bmoe_here

# The fast tier keeps the commands that answer without loading torch (about a second each; tests/tiers.py);
# one that loads torch takes 5-10 s to start on a busy 2-core machine and stays in the slow tier.
NO_TORCH = pytest.mark.witness(seconds=10)
SAME = [
    pytest.param(["--version"], id="--version", marks=NO_TORCH),
    pytest.param(["train", "--no-such-flag"], id="train --no-such-flag", marks=NO_TORCH),
    pytest.param(["cid", "/nonexistent/file"], id="cid /nonexistent/file", marks=NO_TORCH),
    pytest.param(["nonsense-command"], id="nonsense-command", marks=NO_TORCH),
    pytest.param(["train", "--rounds", "0"], id="train --rounds 0"),
    pytest.param(["audit", "/nonexistent/run"], id="audit /nonexistent/run"),
]


@pytest.mark.parametrize("args", SAME)
def test_in_process_and_subprocess_answer_the_same(args: list[str]) -> None:
    modules = set(sys.modules)
    real, here = bmoe(*args), bmoe_here(*args)
    assert modules <= set(sys.modules)  # what the command imported stays: an extension cannot load twice
    assert (here.returncode, here.stdout, here.stderr) == (real.returncode, real.stdout, real.stderr)
    if real.returncode == 2:
        assert_user_error(here)


def test_a_run_in_process_writes_what_a_process_writes_and_leaves_the_process_as_it_was(tmp_path: Path) -> None:
    threads, cwd, environ = torch.get_num_threads(), Path.cwd(), dict(os.environ)
    args = ["train", *SMALL, "--rounds", "2", "--threads", "1"]
    real = bmoe(*args, "--run-dir", tmp_path / "real")
    here = bmoe_here(*args, "--run-dir", tmp_path / "here", cwd=tmp_path)
    assert real.returncode == here.returncode == 0, (real.stderr, here.stderr)
    assert (tmp_path / "here" / "head.json").read_text() == (tmp_path / "real" / "head.json").read_text()
    assert (torch.get_num_threads(), Path.cwd(), dict(os.environ)) == (threads, cwd, environ)
