"""Input found by the hostile pass that once ended in a traceback, half-written files or a silent hours-long run:
each is now one line and exit 2 with nothing written, or (a costly difficulty) said before it starts."""

from __future__ import annotations

from pathlib import Path
from unittest import mock

import pytest

from bmoe.ledger.pow_rate import hash_rate, mining_estimate
from tests.cli.helpers import SMALL, assert_user_error
from tests.cli.in_process import bmoe_here


def test_a_learning_rate_the_integer_expert_cannot_represent_is_refused_before_the_run_directory(
        tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    result = bmoe_here("train", "--run-dir", run_dir, *SMALL, "--rounds", "2", "--expert", "mlp-int",
                       "--comparison", "integer", "--lr", "1e-9")
    assert_user_error(result, "lr 1e-09", "mlp-int", "(2**-25, 1024)")
    assert not run_dir.exists()


@pytest.mark.parametrize("under", ["a-file/report", "a-file/deeper/report"])
def test_calibrate_out_under_a_file_is_one_line(tmp_path: Path, under: str) -> None:
    (tmp_path / "a-file").write_text("x")
    result = bmoe_here("calibrate", "--fleet", "threads1=1,f64=1", "--samples", "20", "--experts", "1",
                       "--out", tmp_path / under)
    assert_user_error(result, "a-file is a file, not a directory")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]


def test_a_difficulty_past_the_bound_is_refused_with_its_reason(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    result = bmoe_here("train", "--run-dir", run_dir, *SMALL, "--difficulty", "32")
    assert_user_error(result, "difficulty", "doubling the 2^d hashes", "[0, 24]", "got 32")
    assert not run_dir.exists()


def test_a_costly_difficulty_is_announced_with_its_expected_mining_time(tmp_path: Path) -> None:
    with mock.patch("bmoe.ledger.pow_rate.hash_rate", return_value=1000.0):  # a slow machine, in effect
        result = bmoe_here("train", "--run-dir", tmp_path / "run", *SMALL, "--rounds", "1", "--difficulty", "16")
    assert result.returncode == 0, result.stderr
    assert "PoW difficulty 16: a block needs about 0.0655 M hashes, about 66 s per block" in result.stderr


def test_the_estimate_scales_with_the_difficulty_and_is_silent_when_quick() -> None:
    assert mining_estimate(8, 1e6) is None
    assert "about 72 min per block" in str(mining_estimate(32, 1e6))
    assert hash_rate(0.01) > 1000
