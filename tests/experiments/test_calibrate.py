"""``bmoe calibrate``: the report's files, a bound between honest divergence and the attack, bad input."""

from __future__ import annotations

import json
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bmoe.experiments.calibration.bound import FLOAT32_EPS, recommend
from bmoe.experiments.calibration.command import CalibrationError, calibrate_command
from bmoe.experiments.calibration.measure import PairDivergence, per_sample_error, profile_pairs
from bmoe.experiments.calibration.reading import read_calibration
from bmoe.storage import cid_of
from bmoe.verify.bound_window import window_refusal
from tests.cli.helpers import assert_user_error, bmoe


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    out = tmp_path_factory.mktemp("calibrate") / "report"
    done = bmoe("calibrate", "--fleet", "threads1=2,f64=1,chunked=1,mkl-compat=1", "--dataset", "digits",
                "--experts", "1", "--samples", "64", "--out", out)
    assert done.returncode == 0, done.stderr
    return out, json.loads((out / "calibration.json").read_text())


def test_the_report_files_exist_and_parse(report: tuple[Path, dict[str, Any]]) -> None:
    out, body = report
    assert sorted(path.name for path in out.iterdir()) == ["calibration.json", "calibration.md", "divergence.png"]
    assert (out / "divergence.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "Recommended bound" in (out / "calibration.md").read_text()
    pairs = [(pair["a"], pair["b"]) for pair in body["pairs"]]
    assert pairs[:4] == [("default", "threads1"), ("default", "f64"), ("default", "chunked"), ("default", "mkl-compat")]
    assert len(pairs) == 4 + 6 and body["settings"]["in_worker_process"] == ["mkl-compat"]
    for pair in body["pairs"]:
        assert set(pair["per_sample"]) >= {"p50", "p90", "p99", "p99.9", "max"}
        assert pair["per_sample"]["count"] == 2 * 64  # one expert, initial and trained


def test_the_bound_sits_above_every_honest_divergence_and_below_the_attack(
        report: tuple[Path, dict[str, Any]]) -> None:
    _, body = report
    rec = body["recommendation"]
    assert rec["metric"] == "per_sample" and np.isfinite(rec["bound"]) and rec["bound"] > 0
    assert all(pair["per_sample"]["max"] < rec["bound"] for pair in body["pairs"])
    assert rec["bound"] < body["attack"]["per_sample"]["min"]
    assert rec["above_bound"] == 0 and rec["false_accusation_rate"] == pytest.approx(3 / rec["honest_comparisons"])
    assert rec["update_bound"] > 0 and rec["update_bound"] < body["attack"]["update_abs"]["p50"]


def test_f64_and_mkl_compat_differ_from_default_and_threads1_does_not(report: tuple[Path, dict[str, Any]]) -> None:
    _, body = report
    by_pair = {(pair["a"], pair["b"]): pair for pair in body["pairs"]}
    for other in ("f64", "mkl-compat"):  # mkl-compat computed in a worker process started with MKL_CBWR
        pair = by_pair[("default", other)]
        assert pair["output_abs"]["nonzero_share"] > 0.5 and 0 < pair["per_sample"]["max"] < 1e-5
    assert by_pair[("default", "threads1")]["per_sample"]["max"] == 0  # the default is one thread


def test_what_calibrate_writes_is_what_bound_from_accepts_and_its_bounds_sit_in_their_window(
        report: tuple[Path, dict[str, Any]]) -> None:
    out, body = report
    read = read_calibration(out / "calibration.json")
    rec = body["recommendation"]
    assert (read.result_bound, read.update_bound) == (rec["bound"], rec["update_bound"])
    assert read.calibrated.cid == cid_of((out / "calibration.json").read_bytes())
    assert window_refusal(read.result_bound, read.update_bound, read.calibrated) is None


def test_a_fleet_that_agrees_bit_for_bit_still_gets_a_positive_bound() -> None:
    zero = PairDivergence("default", "threads1", {"per_sample": np.zeros(10), "update_abs": np.zeros(5)})
    attack = {"per_sample": np.ones(10), "update_abs": np.ones(5)}
    rec = recommend([zero], attack, {1e-3: np.full(10, 1e-3)}, safety_factor=10.0)
    assert rec.bound == 10 * FLOAT32_EPS and rec.false_accusation_rate == pytest.approx(0.3)
    assert rec.smallest_caught_noise_std == 1e-3


def test_per_sample_error_floors_near_zero_rows() -> None:
    import torch

    a = torch.tensor([[3.0, 4.0], [0.0, 0.0]])  # (2, 2): norms 5 and 0
    b = torch.tensor([[3.0, 4.5], [0.0, 1e-3]])
    assert per_sample_error(a, b).tolist() == pytest.approx([0.5 / 29.25 ** 0.5, 1e-3 / 0.1])
    assert profile_pairs(("default", "f64", "chunked")) == [("default", "f64"), ("default", "chunked"),
                                                             ("f64", "chunked")]


BAD = [
    (["--fleet", "nope=1"], "unknown numeric profile"),
    (["--fleet", ""], "--fleet is empty"),
    (["--fleet", "default=3"], "only the default profile"),
    (["--fleet", "f64=0"], "COUNT"),
    (["--fleet", "f64=1", "--safety-factor", "0"], "--safety-factor"),
    (["--fleet", "f64=1", "--safety-factor", "nan"], "--safety-factor"),
    (["--fleet", "f64=1", "--safety-factor", "-inf"], "--safety-factor"),
    (["--fleet", "f64=1", "--samples", "0"], "--samples"),
    (["--fleet", "f64=1", "--experts", "-1"], "--experts"),
    (["--fleet", "f64=1", "--samples", "999999"], "exceeds"),
]


@pytest.mark.parametrize(("args", "needle"), BAD, ids=[needle for _, needle in BAD])
def test_bad_input_is_refused_before_anything_is_written(tmp_path: Path, args: list[str], needle: str) -> None:
    with pytest.raises(CalibrationError, match=re.escape(needle)) as refused:
        calibrate_command.main([*args, "--out", str(tmp_path / "out")], standalone_mode=False)
    assert refused.value.exit_code == 2 and "\n" not in refused.value.format_message()
    assert list(tmp_path.iterdir()) == []


def test_bad_input_on_the_command_line_is_one_line_exit_2(tmp_path: Path) -> None:
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "keep.txt").write_text("mine")
    cases = [(["--fleet", "cuda=1", "--out", str(tmp_path / "a")], "unknown numeric profile"),
             (["--fleet", "f64=1", "--safety-factor", "inf", "--out", str(tmp_path / "b")], "--safety-factor"),
             (["--fleet", "f64=1", "--out", str(busy)], "not an empty directory")]
    with ThreadPoolExecutor(max_workers=3) as pool:
        results = list(pool.map(lambda case: bmoe("calibrate", *case[0]), cases))
    for (_, needle), result in zip(cases, results, strict=True):
        assert_user_error(result, needle)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["busy"]
    assert [path.name for path in busy.iterdir()] == ["keep.txt"]
