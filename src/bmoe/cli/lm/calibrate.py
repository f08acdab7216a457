"""``bmoe lm calibrate``: honest divergence of a language model's expert calls on a mixed fleet, per layer."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource

from bmoe.atomic_write import write_atomically
from bmoe.cli.errors import UserError
from bmoe.cli.lm.options import cache_dir_option, lm_options, lm_values
from bmoe.console import console, results_table
from bmoe.run.settings.options import given_settings, options_of
from bmoe.run.settings.registry import SETTINGS
from bmoe.run.settings.setting import TRAIN

CALIBRATION_ROUNDS = 5  # without --steps


@click.command("calibrate")
@cache_dir_option
@click.option("--out", type=click.Path(path_type=Path), default=None, help="write the measurements as JSON here")
@lm_options
@options_of(tuple(SETTINGS[name] for name in ("fleet", "num_edges", "seed", "threads")), TRAIN)
def calibrate_command(cache_dir: Path | None, out: Path | None, **values: Any) -> None:
    """Measure honest divergence of a language model's expert calls across the fleet, per layer.

    It trains a few rounds (5, or --steps) keeping every answer, and measures every pair of answers to every call."""
    from bmoe.experiments.lm_calibration import MARGIN, measure, one_bound_fits, recommended
    from bmoe.run.lm.config import LMRunConfig
    from bmoe.run.lm.text import load_text

    lm = lm_values(values)
    if click.get_current_context().get_parameter_source("steps") != ParameterSource.COMMANDLINE:
        lm["steps"] = CALIBRATION_ROUNDS  # a few rounds measure the drift; every answer of them is kept to measure
    config = LMRunConfig.build(lm, {**given_settings(TRAIN, values), "difficulty": 0})
    divergence = measure(config, load_text(config.lm, cache_dir))
    rows = [{**row, "largest": f"{row['largest']:.3g}"} for row in divergence.rows()]
    console.print(results_table(f"largest honest distance, fleet {config.run.fleet or 'default'}", rows, [
        ("direction", "task"), ("layer", "layer"), ("phase", "phase"), ("largest", "largest distance")]))
    result_bound, update_bound = recommended(divergence)
    console.print(f"{divergence.pairs} pairs of honest answers measured; with a margin of {MARGIN:g}: "
                  f"--comparison tolerance --bound {result_bound:.3g} --update-bound {update_bound:.3g}")
    for phase in ("result", "update"):
        fits = one_bound_fits(divergence, phase)
        console.print(f"{phase}: {'one bound fits every layer' if fits else 'layers differ by more than the margin'}")
    if out is not None:
        body = {"rows": divergence.rows(), "pairs": divergence.pairs, "result_bound": result_bound,
                "update_bound": update_bound}
        try:
            write_atomically(out, (json.dumps(body, indent=1) + "\n").encode())
        except OSError as err:
            raise UserError(f"cannot write {out}: {err.strerror or err}") from None
