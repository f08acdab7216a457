"""``bmoe train --comparison tolerance``: trains a mixed fleet without accusing it and audits clean;
bad comparison flags and calibration files exit 2 in one line, writing nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli.calibration_file import write_calibration
from tests.cli.helpers import SMALL, assert_user_error
from tests.cli.in_process import bmoe_here as bmoe

MIXED = ["--fleet", "default=3,f64=2"]


def test_a_mixed_fleet_trains_under_tolerance_with_the_bounds_of_a_calibration_and_audits(tmp_path: Path) -> None:
    calibration = write_calibration(tmp_path / "calibration.json", result_max=2e-6, update_max=4e-7)
    run = tmp_path / "run"
    result = bmoe("train", "--run-dir", run, *SMALL, "--rounds", "3", *MIXED, "--comparison", "tolerance",
                  "--bound-from", calibration)
    assert result.returncode == 0, result.stdout + result.stderr
    config = json.loads((run / "config.json").read_text())
    assert config["comparison"] == "tolerance"
    assert (config["result_bound"], config["update_bound"]) == pytest.approx((2e-5, 4e-6), rel=1e-12)
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["summary"]["misbehaviour_records"] == 0
    audit = bmoe("audit", run)
    assert audit.returncode == 0 and "re-derived (tolerance)" in audit.stdout, audit.stdout + audit.stderr


@pytest.mark.parametrize(("args", "needle"), [
    (["--comparison", "fuzzy"], "comparison must be one of exact, tolerance, integer, got 'fuzzy'"),
    (["--comparison", "integer"], "comparison integer needs an expert computed in integers (mlp-int); expert 'mlp'"),
    (["--comparison", "integer", "--expert", "cnn"], "expert 'cnn' computes in floating point and cannot be quantised"),
    (["--comparison", "tolerance", "--bound", "0"], "result_bound (tolerance bound of results) must be in (0, 1e+06]"),
    (["--comparison", "tolerance", "--bound", "-1"], "must be in (0, 1e+06]"),
    (["--comparison", "tolerance", "--bound", "nan"], "must be a finite number"),
    (["--comparison", "tolerance", "--update-bound", "inf"], "update_bound"),
    (["--bound", "1e-5"], "--bound need --comparison tolerance (the comparison in force is exact)"),
    (["--comparison", "tolerance", "--bound-from", "missing.json"], "cannot read a calibration"),
    (["--comparison", "tolerance", "--bound-from", "bad.json"], "not a calibration.json written by bmoe calibrate"),
])
def test_bad_comparison_flags_exit_2_in_one_line_writing_nothing(tmp_path: Path, args: list[str], needle: str) -> None:
    (tmp_path / "bad.json").write_text(json.dumps({"recommendation": {"bound": -1, "update_bound": 1e-6}}))
    run = tmp_path / "run"
    assert_user_error(bmoe("train", "--run-dir", run, *SMALL, "--rounds", "2", *args, cwd=tmp_path), needle)
    assert not run.exists()
