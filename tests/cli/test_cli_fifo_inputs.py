"""Files a user names that are FIFOs are refused at once, never opened for a blocking read: a run's
config.json (``bmoe infer``, ``bmoe train`` on an existing run directory) and a dataset's IDX file."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli.helpers import SMALL, assert_user_error, bmoe


@pytest.fixture
def run_with_fifo_config(tmp_path: Path) -> Path:
    run_dir = tmp_path / "run"
    assert bmoe("train", "--run-dir", run_dir, "--rounds", "1", *SMALL).returncode == 0
    (run_dir / "config.json").unlink()
    os.mkfifo(run_dir / "config.json")
    return run_dir


def test_infer_refuses_a_config_json_that_is_a_fifo(run_with_fifo_config: Path) -> None:
    assert_user_error(bmoe("infer", run_with_fifo_config, timeout=60), "config.json", "FIFO")


def test_an_idx_file_that_is_a_fifo_is_a_data_error_not_a_hang(tmp_path: Path) -> None:
    fifo = tmp_path / "train-images-idx3-ubyte"
    os.mkfifo(fifo)
    code = ("import sys\nfrom bmoe.data import DataError\nfrom bmoe.data.idx import read_idx\n"
            "try:\n    read_idx(sys.argv[1])\nexcept DataError as err:\n    print(err)\n")
    result = subprocess.run([sys.executable, "-c", code, str(fifo)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "FIFO" in result.stdout and str(fifo) in result.stdout
