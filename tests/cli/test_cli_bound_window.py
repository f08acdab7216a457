"""A bound cannot frame an honest fleet: ``--bound-from`` takes only a calibration ``bmoe calibrate`` wrote,
a bound below its honest maximum or more than 1000 x above it is refused in one line (exit 2, no run
directory) unless ``--force-bound``, which the genesis records with the calibration's CID; without a
calibration the bound in force and its origin are printed, and ``bmoe audit`` and the explorer show them."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from bmoe.explorer.app import make_app
from bmoe.explorer.snapshot import Explorer
from bmoe.explorer.source import RunSource
from bmoe.ledger.chainstore import ChainStore
from bmoe.storage import cid_of
from tests.cli.calibration_file import calibration_body, write_calibration
from tests.cli.helpers import SMALL, assert_user_error
from tests.cli.in_process import bmoe_here as bmoe

MIXED = ["--fleet", "default=3,f64=2", "--comparison", "tolerance"]
RUN = [*SMALL, "--rounds", "2", *MIXED]


def genesis_of(run: Path) -> dict[str, Any]:
    with ChainStore(run / "chain.sqlite", readonly=True) as chain:
        return dict(next(chain.iter_blocks()).transactions[0].payload)


def forged(**recommendation: object) -> dict[str, Any]:
    body = calibration_body()
    body["recommendation"].update(recommendation)
    return body


HOSTILE = [
    ("bound 1e-300", forged(bound=1e-300), "recommendation.bound 1e-300 is not its safety_factor x its observed"),
    ("bound 1e6", forged(bound=1e6), "recommendation.bound 1e+06 is not its safety_factor x"),
    ("a consistent 1e-300", forged(bound=1e-300, observed_max=1e-301), "recommendation.bound 1e-300 is not"),
    ("a consistent 1e6", forged(bound=1e6, observed_max=1e5), "observed_max must be a finite number in [0, 2]"),
    ("a safety factor of 1e7", forged(safety_factor=1e7, bound=20.0), "safety_factor must be a finite number in"),
    ("NaN", forged(observed_max=math.nan), "observed_max must be a finite number"),
    ("another metric", forged(metric="output_abs"), "not on the metric the tolerance comparison bounds"),
    ("the old hand-written form", {"recommendation": {"bound": 2e-5, "update_bound": 4e-6}},
     "not a calibration.json written by bmoe calibrate"),
    ("not JSON", "{", "not JSON"),
]


@pytest.mark.parametrize(("body", "needle"), [case[1:] for case in HOSTILE], ids=[case[0] for case in HOSTILE])
def test_a_forged_calibration_exits_2_in_one_line_writing_nothing(tmp_path: Path, body: object, needle: str) -> None:
    (tmp_path / "calibration.json").write_text(body if isinstance(body, str) else json.dumps(body))
    run = tmp_path / "run"
    assert_user_error(bmoe("train", "--run-dir", run, *RUN, "--bound-from", "calibration.json", cwd=tmp_path),
                      "--bound-from calibration.json: ", needle)
    assert not run.exists()


@pytest.mark.parametrize(("args", "needle"), [
    (["--bound", "1e-7"], "the result bound 1e-07 is below the largest honest divergence the calibration measured "
                          "(2e-06): honest edges would be recorded as dissenting; give --force-bound"),
    (["--update-bound", "1e-8"], "the update bound 1e-08 is below"),
    (["--bound", "0.01"], "the result bound 0.01 is more than 1000 x the largest honest divergence"),
    (["--update-bound", "1e-2"], "the update bound 0.01 is more than 1000 x"),
])
def test_a_bound_outside_the_calibrations_window_exits_2_writing_nothing(tmp_path: Path, args: list[str],
                                                                          needle: str) -> None:
    write_calibration(tmp_path / "calibration.json")
    run = tmp_path / "run"
    assert_user_error(bmoe("train", "--run-dir", run, *RUN, "--bound-from", "calibration.json", *args, cwd=tmp_path),
                      needle)
    assert not run.exists()


def test_force_bound_needs_a_calibration(tmp_path: Path) -> None:
    run = tmp_path / "run"
    assert_user_error(bmoe("train", "--run-dir", run, *RUN, "--force-bound"),
                      "--force-bound overrides the check of the bounds against a calibration, and there is none")
    assert_user_error(bmoe("train", "--run-dir", run, *SMALL, "--force-bound"), "--force-bound need --comparison "
                      "tolerance")
    assert not run.exists()


def test_a_forced_bound_is_recorded_with_the_calibrations_cid_and_shown_by_audit_and_explorer(tmp_path: Path) -> None:
    calibration = write_calibration(tmp_path / "calibration.json")
    run = tmp_path / "run"
    done = bmoe("train", "--run-dir", run, *RUN, "--bound-from", calibration, "--update-bound", "1e-6",
                "--force-bound")
    assert done.returncode == 0, done.stderr
    cid = cid_of(calibration.read_bytes())
    assert bmoe("cid", calibration).stdout.strip() == cid
    genesis = genesis_of(run)
    assert genesis["calibration"] == {"cid": cid, "result_max": 2e-6, "update_max": 4e-7}
    assert genesis["force_bound"] is True and genesis["comparison"]["params"]["update_bound"] == 1e-6
    shown = (f"bound in force: results <= 2e-05, updates <= 1e-06: checked against calibration {cid} (honest maxima "
             "2e-06, 4e-07), within its window")
    assert shown in done.stdout
    audit = bmoe("audit", run)
    assert audit.returncode == 0 and shown + " (at least the honest maximum, at most 1000 x it), --force-bound given" \
        in audit.stdout, audit.stdout + audit.stderr
    with TestClient(make_app(Explorer(RunSource(run)), is_cluster=False)) as client:
        page = client.get("/run")
    assert page.status_code == 200 and "bound in force" in page.text and cid in page.text
    assert "--force-bound given" in page.text


@pytest.mark.parametrize(("args", "origin"), [
    ([], "results <= 0.0001, updates <= 1e-05: the defaults, not calibrated for this fleet (bmoe calibrate, "
         "then --bound-from)"),
    (["--bound", "5e-5"], "results <= 5e-05, updates <= 1e-05: stated (--bound, --update-bound), not calibrated"),
])
def test_without_a_calibration_the_bound_and_its_origin_are_printed_and_audited(tmp_path: Path, args: list[str],
                                                                                origin: str) -> None:
    run = tmp_path / "run"
    done = bmoe("train", "--run-dir", run, *RUN, *args)
    assert done.returncode == 0 and f"bound in force: {origin}" in done.stdout, done.stdout + done.stderr
    assert "calibration" not in genesis_of(run) and "force_bound" not in genesis_of(run)
    audit = bmoe("audit", run)
    assert audit.returncode == 0 and f"bound in force: {origin}" in audit.stdout, audit.stdout + audit.stderr
    with TestClient(make_app(Explorer(RunSource(run)), is_cluster=False)) as client:
        assert origin.replace(" <= ", " &lt;= ") in client.get("/run").text
