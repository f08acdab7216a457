"""The window a tolerance bound must sit in when a calibration measured the fleet, and the words that
say which bound is in force and where it came from.

A calibration (``bmoe calibrate``) measures the largest honest divergence of a fleet, per phase. A
bound below it accuses honest edges for what their hardware does (it frames the fleet); a bound far
above it gives an attacker inside it (``bound_hug``) room the fleet's numerics never needed. **Far
above** is more than :data:`FAR_ABOVE` (1000) × the calibrated maximum, floored at one float32 ulp
for results (2⁻²³, as ``bmoe calibrate`` floors it) and 1 % of that for updates: ``bmoe calibrate``
recommends 10 × (its default safety factor), and the built-in defaults sit 65 × (results) to 670 ×
(MLP updates) above the largest honest divergence measured (docs/verification.md), so 1000 × leaves
the recommendation 100 × of headroom and still refuses a bound of the paper's attack's size.

The genesis records the calibration the bounds were checked against (``calibration``: the file's
CID and its two maxima) and ``force_bound: true`` when the user ran outside the window anyway; both
are absent otherwise, so a run without a calibration keeps its genesis. Without a calibration the
origin follows from the recorded bounds: the defaults, or stated by the user and not calibrated.

Must not know: files, the command line, tensors, the ledger.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bmoe.verify.comparison import DEFAULT_RESULT_BOUND, DEFAULT_UPDATE_BOUND, ComparisonError, make_comparison

FLOAT32_EPS = 2.0 ** -23  # one float32 ulp, relative: the smallest honest difference worth bounding
FLOORS = {"result": FLOAT32_EPS, "update": FLOAT32_EPS * 1e-2}  # bmoe calibrate's floors on the observed maxima
FAR_ABOVE = 1000.0  # a bound more than this × the calibrated honest maximum is no longer calibrated to the fleet
MAX_PER_SAMPLE = 2.0  # ‖a − b‖ / max(‖a‖, ‖b‖, floor) ≤ 2 (triangle inequality): no honest maximum is larger
MAX_BOUND = 1e6  # tolerance bounds, and honest maxima of updates: a relative error past this accepts anything


class BoundWindowError(ValueError):
    """A bound outside its calibration's window, or a calibration record that cannot be one (one line)."""


@dataclass(frozen=True)
class Calibrated:
    """What the genesis records of the calibration: its file's CID and the largest honest divergences."""

    cid: str
    result_max: float  # per-sample ‖Δ‖ / max(‖y‖, 0.1) of results
    update_max: float  # element-wise |Δ| of updated weights

    def spec(self) -> dict[str, Any]:
        return {"cid": self.cid, "result_max": self.result_max, "update_max": self.update_max}

    def maximum(self, phase: str) -> float:
        return self.result_max if phase == "result" else self.update_max


def bound_refusal(phase: str, bound: float, calibrated: Calibrated) -> str | None:
    """Why ``bound`` for ``phase`` ("result" or "update") sits outside ``calibrated``'s window, or None."""
    honest = calibrated.maximum(phase)
    if bound < honest:
        return (f"the {phase} bound {bound:.3g} is below the largest honest divergence the calibration "
                f"measured ({honest:.3g}): honest edges would be recorded as dissenting")
    ceiling = FAR_ABOVE * max(honest, FLOORS[phase])
    if bound > ceiling:
        return (f"the {phase} bound {bound:.3g} is more than {FAR_ABOVE:g} x the largest honest divergence "
                f"the calibration measured ({honest:.3g}): fraud that far from the honest answers would be "
                "accepted")
    return None


def window_refusal(result_bound: float, update_bound: float, calibrated: Calibrated) -> str | None:
    """The first reason either bound sits outside the calibration's window, or None."""
    return (bound_refusal("result", result_bound, calibrated)
            or bound_refusal("update", update_bound, calibrated))


def calibrated_from_spec(spec: object) -> Calibrated:
    """The genesis's ``calibration`` section (its schema is checked by the ledger)."""
    if not isinstance(spec, Mapping) or set(spec) != {"cid", "result_max", "update_max"}:
        raise BoundWindowError("calibration must be {cid, result_max, update_max}")
    return Calibrated(str(spec["cid"]), float(spec["result_max"]), float(spec["update_max"]))


def check_genesis_window(genesis: Mapping[str, Any]) -> None:
    """The ledger's rule: a recorded calibration needs a tolerance comparison whose bounds sit in its window
    unless ``force_bound`` is recorded, and ``force_bound`` needs a calibration to override."""
    calibration, forced = genesis.get("calibration"), genesis.get("force_bound", False)
    if calibration is None:
        if forced:
            raise BoundWindowError("force_bound overrides a calibration's window, and none is recorded")
        return
    try:
        comparison = make_comparison(genesis.get("comparison"))
    except ComparisonError as err:
        raise BoundWindowError(str(err)) from None
    if not comparison.has_bounds:
        raise BoundWindowError(f"a calibration bounds a tolerance comparison, not {comparison.name}")
    refusal = window_refusal(comparison.bound("result"), comparison.bound("update"), calibrated_from_spec(calibration))
    if refusal is not None and not forced:
        raise BoundWindowError(refusal)


def bound_in_force(genesis: Mapping[str, Any]) -> str | None:
    """The bounds a genesis puts in force and their origin, in words; None when its comparison has no bound."""
    try:
        comparison = make_comparison(genesis.get("comparison"))
    except ComparisonError:
        return None
    if not comparison.has_bounds:
        return None
    result, update = comparison.bound("result"), comparison.bound("update")
    bounds = f"results <= {result:.3g}, updates <= {update:.3g}"
    calibration = genesis.get("calibration")
    if calibration is not None:
        calibrated = calibrated_from_spec(calibration)
        refusal = window_refusal(result, update, calibrated)
        checked = (f"forced (--force-bound) although {refusal}" if refusal is not None
                   else f"within its window (at least the honest maximum, at most {FAR_ABOVE:g} x it)"
                   + (", --force-bound given" if genesis.get("force_bound") else ""))
        return (f"{bounds}: checked against calibration {calibrated.cid} (honest maxima "
                f"{calibrated.result_max:.3g}, {calibrated.update_max:.3g}), {checked}")
    if (result, update) == (DEFAULT_RESULT_BOUND, DEFAULT_UPDATE_BOUND):
        return f"{bounds}: the defaults, not calibrated for this fleet (bmoe calibrate, then --bound-from)"
    return f"{bounds}: stated (--bound, --update-bound), not calibrated for this fleet"
