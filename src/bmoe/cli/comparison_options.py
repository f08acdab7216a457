"""``--comparison``, ``--bound``, ``--update-bound``, ``--bound-from`` and ``--force-bound``: the comparison option
group of ``train``, ``demo`` and ``cluster up``, and the settings it gives (a calibration file read into its bounds).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import click

from bmoe.cli.errors import fail


def comparison_options(command: Callable[..., None]) -> Callable[..., None]:
    """``--comparison``, ``--bound``, ``--update-bound``, ``--bound-from`` and ``--force-bound``, shared by train,
    demo and cluster up."""
    options = [
        click.option("--comparison", default=None, help="exact | tolerance | integer: how edges' answers are "
                     "judged the same (default exact; the demo: tolerance)"),
        click.option("--bound", type=float, default=None, help="tolerance: per-sample ‖Δ‖/max(‖y‖, 0.1) of results"),
        click.option("--update-bound", type=float, default=None, help="tolerance: element-wise |Δ| of updated weights"),
        click.option("--bound-from", type=click.Path(path_type=Path), default=None,
                     help="tolerance: a calibration.json written by bmoe calibrate: its bounds (unless --bound or "
                     "--update-bound), checked against its honest maxima; the genesis records its CID"),
        click.option("--force-bound", is_flag=True, default=False,
                     help="run with bounds outside the calibration's window (below its honest maximum, or more "
                     "than 1000x it); the genesis records that"),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def comparison_settings(comparison: str | None, bound: float | None, update_bound: float | None,
                        bound_from: Path | None, force_bound: bool = False,
                        default: str = "exact") -> dict[str, object]:
    """The config settings the comparison flags give; bounds without a tolerance comparison are refused.
    Whether the bounds sit in a calibration's window is checked with the whole config (config_checks)."""
    from bmoe.experiments.calibration.reading import BoundFileError, read_calibration

    chosen = comparison if comparison is not None else default
    given = [flag for flag, value in (("--bound", bound), ("--update-bound", update_bound),
                                      ("--bound-from", bound_from), ("--force-bound", True if force_bound else None))
             if value is not None]
    if given and chosen != "tolerance":
        fail(f"{', '.join(given)} need --comparison tolerance (the comparison in force is {chosen})")
    settings: dict[str, object] = {"comparison": chosen}
    if bound_from is not None:
        try:
            calibration = read_calibration(bound_from)
        except BoundFileError as err:
            fail(str(err))
        settings.update(result_bound=calibration.result_bound, update_bound=calibration.update_bound,
                        calibration_cid=calibration.calibrated.cid,
                        calibrated_result_max=calibration.calibrated.result_max,
                        calibrated_update_max=calibration.calibrated.update_max)
    if bound is not None:
        settings["result_bound"] = bound
    if update_bound is not None:
        settings["update_bound"] = update_bound
    if force_bound:
        settings["force_bound"] = True
    return settings
