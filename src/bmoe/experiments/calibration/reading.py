"""Owns reading a ``calibration.json`` back for ``--bound-from``: the file must be one ``bmoe calibrate``
wrote (its version, the metric the tolerance comparison bounds, the norm floor, finite maxima in a
sane range, and recommended bounds that are its safety factor × those maxima, as ``bound.py``
computes them), and it is named by its CID, which the genesis records.

A forged or hand-edited file fails one of these checks with one line; whether a bound sits in the
calibration's window is ``verify/bound_window.py``'s rule, checked with the run's settings.

Must not know: the command line, the run's settings.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bmoe.experiments.calibration.bound import METRIC
from bmoe.experiments.calibration.report import VERSION
from bmoe.verify.bound_window import FLOORS, MAX_BOUND, MAX_PER_SAMPLE, Calibrated
from bmoe.verify.comparison import NORM_FLOOR

CONSISTENT = 1e-9  # relative: a recommended bound recomputed from the file's own numbers


class BoundFileError(ValueError):
    """A calibration file that does not hold a usable recommendation (one line)."""


@dataclass(frozen=True)
class CalibrationFile:
    """What ``--bound-from`` takes from a calibration: its recommended bounds and what the genesis records."""

    calibrated: Calibrated
    result_bound: float
    update_bound: float


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    as_float = float(value)
    return as_float if math.isfinite(as_float) else None


def _field(recommendation: dict[str, Any], key: str, low: float, high: float, low_open: bool = False) -> float:
    value = _number(recommendation.get(key))
    if value is None or not (value > low if low_open else value >= low) or value > high:
        interval = f"{'(' if low_open else '['}{low:g}, {high:g}]"
        raise BoundFileError(f"recommendation.{key} must be a finite number in {interval}, got "
                             f"{str(recommendation.get(key))[:40]}")
    return value


def _consistent(recommendation: dict[str, Any], key: str, expected: float) -> None:
    if not math.isclose(float(recommendation[key]), expected, rel_tol=CONSISTENT):
        raise BoundFileError(f"recommendation.{key} {recommendation[key]:.3g} is not its safety_factor x its observed "
                             f"maximum, {expected:.3g}, as bmoe calibrate computes it")


def parse_calibration(data: bytes) -> CalibrationFile:
    """The recommendation in ``data`` after every check (:class:`BoundFileError` names the first failure)."""
    from bmoe.storage import cid_of

    try:
        body = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as err:
        raise BoundFileError(f"not JSON: {str(err)[:80]}") from None
    if not isinstance(body, dict) or body.get("version") != VERSION:
        raise BoundFileError(f"not a calibration.json written by bmoe calibrate (version {VERSION})")
    recommendation, settings = body.get("recommendation"), body.get("settings")
    if not isinstance(recommendation, dict) or not isinstance(settings, dict):
        raise BoundFileError("not a calibration.json written by bmoe calibrate (no recommendation or settings)")
    if recommendation.get("metric") != METRIC or recommendation.get("norm_floor") != NORM_FLOOR:
        raise BoundFileError(f"its bound is not on the metric the tolerance comparison bounds ({METRIC}, norm floor "
                             f"{NORM_FLOOR})")
    result_max = _field(recommendation, "observed_max", 0.0, MAX_PER_SAMPLE)
    update_max = _field(recommendation, "update_observed_max", 0.0, MAX_BOUND)
    safety = _field(recommendation, "safety_factor", 0.0, MAX_BOUND, low_open=True)
    result_bound = _field(recommendation, "bound", 0.0, MAX_BOUND, low_open=True)
    update_bound = _field(recommendation, "update_bound", 0.0, MAX_BOUND, low_open=True)
    _consistent(recommendation, "bound", safety * max(result_max, FLOORS["result"]))
    _consistent(recommendation, "update_bound", safety * max(update_max, FLOORS["update"]))
    return CalibrationFile(Calibrated(cid_of(data), result_max, update_max), result_bound, update_bound)


def read_calibration(path: Path) -> CalibrationFile:
    """``path`` read (a regular file of bounded size) and parsed; every failure one line naming ``path``."""
    from bmoe.fileio import read_regular_file

    try:
        data = read_regular_file(path)
    except OSError as err:
        raise BoundFileError(f"--bound-from {path}: cannot read a calibration: {err}") from None
    try:
        return parse_calibration(data)
    except BoundFileError as err:
        raise BoundFileError(f"--bound-from {path}: {err}") from None
