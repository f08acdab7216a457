"""``bmoe sweep-sampling``: the table's shape, no accepted manipulation where r exceeds the colluders or
under ``all``, escapes measured against an honest edge's computation, resuming, bad flags."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

import pytest

from bmoe.experiments.sampling_sweep.report import COLUMNS, FILES, write_report
from bmoe.experiments.sampling_sweep.sweep import (
    SweepSettings,
    Unit,
    escape_without_disputes,
    run_sweep,
    run_unit,
    split_probability,
)
from bmoe.verify.sampling_bound import escape_probability
from tests.cli.helpers import assert_user_error
from tests.cli.in_process import bmoe_here as bmoe

TINY = SweepSettings(ratios=(0.2, 0.4), replicas=(1, 3, 5), dataset="synthetic", rounds=5, batch_size=32, lr=0.2,
                     num_experts=4, top_k=2, edges=10, hidden=16, workers=1)


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict[str, Any]]]:
    out = tmp_path_factory.mktemp("sweep")
    rows = run_sweep(TINY, out)
    write_report(out, TINY, rows, "bmoe sweep-sampling (test)")
    return out, rows


def _rows(rows: list[dict[str, Any]], mode: str) -> list[dict[str, Any]]:
    return [row for row in rows if row["mode"] == mode]


@pytest.mark.slow  # the nine runs of the sweep fixture: ~5 s of CPU, at the fast tier's guard
def test_the_table_has_a_row_per_run_and_every_file(sweep: tuple[Path, list[dict[str, Any]]]) -> None:
    out, rows = sweep
    assert [row["unit"] for row in rows] == ["none", "all-f0.20", "sampled-f0.20-r1", "sampled-f0.20-r3",
                                             "sampled-f0.20-r5", "all-f0.40", "sampled-f0.40-r1", "sampled-f0.40-r3",
                                             "sampled-f0.40-r5"]
    assert sorted(p.name for p in out.iterdir()) == sorted([*FILES, "runs"])
    with (out / "sweep.csv").open() as handle:
        table = list(csv.DictReader(handle))
    assert len(table) == 9 and tuple(table[0]) == COLUMNS
    assert json.loads((out / "sweep.json").read_text())["rows"] == rows
    assert (out / "sweep.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    summary = (out / "SUMMARY.md").read_text()
    assert summary.count("| 0.2 (2) | ") == 4 and summary.count("| 0.4 (4) | ") == 4  # four tables by f and r
    for row in rows:
        assert row["colluders"] == round(row["f"] * 10) and row["decisions"] > 0 and row["served_decisions"] > 0
        assert row["bound"] == escape_probability(row["f"], row["r"], 10)
        assert 0 <= row["mean_accuracy"] <= 1 and row["unverified"] == 0


@pytest.mark.slow  # the nine runs of the sweep fixture: ~5 s of CPU, at the fast tier's guard
def test_no_manipulation_is_accepted_once_r_exceeds_the_colluders(sweep: tuple[Path, list[dict[str, Any]]]) -> None:
    _, rows = sweep
    reference = _rows(rows, "none")[0]
    beyond = [row for row in _rows(rows, "sampled") if row["r"] > row["colluders"]]
    assert {(row["f"], row["r"]) for row in beyond} == {(0.2, 3), (0.2, 5), (0.4, 5)}
    for row in beyond:
        assert (row["manipulated"], row["update_manipulated"], row["served_manipulated"]) == (0, 0, 0), row["unit"]
        assert row["colluder_samples"] == 0 and row["bound"] == 0
        assert row["model"] == reference["model"]  # nothing manipulated got in: exactly the clean model


@pytest.mark.slow  # the nine runs of the sweep fixture: ~5 s of CPU, at the fast tier's guard
def test_all_accepts_no_manipulation(sweep: tuple[Path, list[dict[str, Any]]]) -> None:
    _, rows = sweep
    reference = _rows(rows, "none")[0]
    for row in _rows(rows, "all"):
        assert (row["manipulated"], row["update_manipulated"], row["served_manipulated"]) == (0, 0, 0), row["unit"]
        assert row["edges_per_decision"] == 10 and row["disputed"] == 0
        assert row["model"] == reference["model"] and row["test_accuracy"] == reference["test_accuracy"]


@pytest.mark.slow  # the nine runs of the sweep fixture: ~5 s of CPU, at the fast tier's guard
def test_escapes_are_measured_where_the_sample_can_be_all_colluders(
        sweep: tuple[Path, list[dict[str, Any]]]) -> None:
    _, rows = sweep
    reference = _rows(rows, "none")[0]
    one = next(row for row in rows if row["unit"] == "sampled-f0.40-r1")
    assert one["manipulated"] > 0 and one["model"] != reference["model"]
    assert one["manipulated"] == one["colluder_samples"]  # r = 1: the one replica decides, never disputed
    assert one["disputed"] == 0 and one["edges_per_decision"] == 1
    for row in _rows(rows, "sampled"):  # a unanimous colluding sample always gets in; never more than a majority
        assert row["colluder_samples"] <= row["manipulated"] <= row["majority_samples"], row["unit"]


def test_colluders_that_do_not_strike_are_not_counted() -> None:
    """Escapes are accepted results that differ from an honest edge's, not samples of colluders."""
    quiet = SweepSettings(**{**TINY.to_dict(), "ratios": (0.4,), "replicas": (1,), "serve": False,
                             "attack_params": {"probability": 0.0}})
    row = run_unit(quiet, Unit("sampled", 0.4, 1))
    clean = run_unit(quiet, Unit("none", 0.0, 10))
    assert row["colluder_samples"] > 0 and row["manipulated"] == 0 and row["update_manipulated"] == 0
    assert row["model"] == clean["model"]


def test_the_predicted_shares_of_escapes_and_disputes() -> None:
    assert escape_without_disputes(0.3, 1, 10) == pytest.approx(0.3)
    assert escape_without_disputes(0.3, 2, 10) == pytest.approx(escape_probability(0.3, 2, 10))  # 2 of 2
    assert escape_without_disputes(0.3, 3, 10) == pytest.approx((math.comb(3, 2) * 7 + 1) / math.comb(10, 3))
    assert escape_without_disputes(0.4, 5, 10) == pytest.approx(
        sum(math.comb(4, j) * math.comb(6, 5 - j) for j in (3, 4)) / math.comb(10, 5))
    assert split_probability(0.1, 2, 10) == pytest.approx(1 - 36 / 45)  # one colluder and one honest edge
    assert split_probability(0.4, 3, 10) == pytest.approx(1 - (20 + 4) / 120)
    assert split_probability(0.4, 1, 10) == 0  # one replica never splits


@pytest.mark.slow  # the nine runs of the sweep fixture: ~5 s of CPU, at the fast tier's guard
def test_a_second_sweep_reuses_every_finished_run(sweep: tuple[Path, list[dict[str, Any]]]) -> None:
    out, rows = sweep
    stamps = {p.name: p.stat().st_mtime_ns for p in (out / "runs").glob("*.json")}
    reused: list[bool] = []
    again = run_sweep(TINY, out, lambda unit, row, was_reused: reused.append(was_reused))
    assert again == rows and reused == [True] * 9
    assert {p.name: p.stat().st_mtime_ns for p in (out / "runs").glob("*.json")} == stamps


SMALL_FLAGS = ["--dataset", "synthetic", "--experts", "4", "--top-k", "2", "--hidden", "16", "--batch-size", "32",
               "--workers", "1"]


def test_the_command_writes_the_report(tmp_path: Path) -> None:
    out = tmp_path / "sweep"
    done = bmoe("sweep-sampling", *SMALL_FLAGS, "--rounds", "2", "--ratios", "0.4", "--replicas", "1", "--out", out)
    assert done.returncode == 0, done.stderr
    assert "sampled-f0.40-r1" in done.stdout and "bound 0.4" in done.stdout
    assert [row["unit"] for row in json.loads((out / "sweep.json").read_text())["rows"]] == \
        ["none", "all-f0.40", "sampled-f0.40-r1"]


@pytest.mark.parametrize(("flags", "needle"), [
    (["--replicas", "1,11"], "r must be in [1, M = 10], got 11"),
    (["--ratios", "0.2,x"], "--ratios must be comma-separated floats"),
    (["--ratios", "0.5,1.0"], "in (0, 1), got 1"),
    (["--replicas", "2,2"], "repeats a value"),
    (["--attack", "nonsense"], "unknown attack 'nonsense'"),
    (["--attack-param", "noise_std"], "NAME=NUMBER"),
])
def test_bad_flags_are_refused_in_one_line(tmp_path: Path, flags: list[str], needle: str) -> None:
    out = tmp_path / "sweep"
    assert_user_error(bmoe("sweep-sampling", *SMALL_FLAGS, *flags, "--out", out), needle)
    assert not out.exists()
