"""``bmoe calibrate``: measure honest divergence across a fleet's numeric profiles and recommend the
bound a tolerance comparison should use.

Owns validating the inputs (all before any work, nothing written on a refusal) and running the
steps: build the probe, compute it under every profile, measure, recommend, write the report.
"""

from __future__ import annotations

import math
import platform
from pathlib import Path

import click
import torch

from bmoe.console import console
from bmoe.data import load_dataset
from bmoe.edge.profiles import DEFAULT, FleetError, get_profile, parse_fleet
from bmoe.experiments.calibration.bound import recommend, stability
from bmoe.experiments.calibration.measure import (
    WorkerFailed,
    attack_divergence,
    attack_scan,
    compute_all,
    measure_pairs,
)
from bmoe.experiments.calibration.probe import TRAIN_STEPS, build_probe
from bmoe.experiments.calibration.report import JSON_FILE, Calibration, write_report

ATTACK_NOISE_STD = 0.5  # the paper's attack as bmoe sets it (edge/attacks/gaussian.py)
WEAKER_NOISE_STDS = (1e-2, 1e-3, 1e-4, 1e-5, 1e-6, 1e-7)  # fraud far below the paper's: where is it caught?


class CalibrationError(click.ClickException):
    """Bad input to ``bmoe calibrate``: one line, exit status 2."""

    exit_code = 2


def fleet_profiles(fleet: str) -> tuple[str, ...]:
    """The distinct profiles of ``fleet`` (PROFILE=COUNT,...), ``default`` first as the reference."""
    if not fleet.strip():
        raise CalibrationError("--fleet is empty: name at least one profile, e.g. --fleet f64=1,chunked=1")
    counts = [entry.partition("=")[2].strip() for entry in fleet.split(",")]
    edges = sum(int(count) for count in counts if count.isdecimal())
    try:
        names = parse_fleet(fleet, edges)
    except FleetError as err:
        raise CalibrationError(str(err)) from None
    distinct = tuple(dict.fromkeys((DEFAULT, *names)))
    if len(distinct) < 2:
        raise CalibrationError("--fleet has only the default profile: nothing to compare against it")
    return distinct


def _check_out(out: Path) -> None:
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise CalibrationError(f"--out {out} exists and is not an empty directory; pass a new directory")
    above = next((parent for parent in out.absolute().parents if parent.exists()), None)
    if above is not None and not above.is_dir():
        raise CalibrationError(f"--out {out}: {above} is a file, not a directory")


def _check_positive(name: str, value: float) -> None:
    if not math.isfinite(value) or value <= 0:
        raise CalibrationError(f"{name} must be a finite number > 0, got {value}")


@click.command()
@click.option("--fleet", required=True, help="the profiles to compare, PROFILE=COUNT,... e.g. threads2=1,f64=1")
@click.option("--dataset", type=click.Choice(["digits", "fashion-mnist", "synthetic"]), default="digits",
              show_default=True)
@click.option("--preset", type=click.Choice(["mlp", "cnn"]), default="mlp", show_default=True,
              help="expert architecture")
@click.option("--experts", type=int, default=4, show_default=True, help="seeded experts (each initial and trained)")
@click.option("--samples", type=int, default=500, show_default=True, help="real test samples per expert")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--safety-factor", type=float, default=10.0, show_default=True,
              help="bound = this × the largest honest divergence observed")
@click.option("--threads", type=int, default=1, show_default=True, help="torch threads of the default profile")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="new directory for the report")
def calibrate_command(fleet: str, dataset: str, preset: str, experts: int, samples: int, seed: int,
                      safety_factor: float, threads: int, out: Path) -> None:
    """Measure honest divergence across the fleet's numeric profiles and recommend a tolerance bound."""
    names = fleet_profiles(fleet)
    for name, value in (("--experts", experts), ("--samples", samples), ("--threads", threads)):
        if value < 1:
            raise CalibrationError(f"{name} must be a whole number >= 1, got {value}")
    _check_positive("--safety-factor", safety_factor)
    _check_out(out)
    data = load_dataset(dataset, seed=seed)
    if samples > data.num_test:
        raise CalibrationError(f"--samples {samples} exceeds {dataset}'s {data.num_test} test samples")

    torch.set_num_threads(threads)
    probe = build_probe(data, preset, experts, samples, seed)
    try:
        results = compute_all(probe, names, threads)
    except WorkerFailed as err:
        raise CalibrationError(str(err)) from None
    pairs = measure_pairs(results)
    attack = attack_divergence(probe, results[DEFAULT], ATTACK_NOISE_STD, seed)
    settings = {
        "fleet": fleet, "profiles": list(names), "dataset": dataset, "preset": preset, "experts": experts,
        "weight_sets": len(probe.names), "samples": samples, "seed": seed, "threads": threads,
        "train_steps": TRAIN_STEPS, "lr": probe.lr, "safety_factor": safety_factor,
        "attack_noise_std": ATTACK_NOISE_STD, "torch": torch.__version__, "device": "cpu",
        "machine": platform.machine(), "in_worker_process": [n for n in names if not get_profile(n).in_process],
    }
    skipped = [] if torch.cuda.is_available() else ["cuda: no GPU on this machine (CPU vs CUDA not measured)"]
    scan = attack_scan(probe, results[DEFAULT], WEAKER_NOISE_STDS, seed)
    recommendation = recommend(pairs, attack, scan, safety_factor)
    try:
        write_report(Calibration(settings, skipped, pairs, attack, stability(pairs), recommendation), out)
    except OSError as err:  # written to a directory beside it first: nothing half-written at --out
        raise CalibrationError(f"cannot write --out {out}: {err.strerror or err}") from None
    console.print(f"recommended bound: per-sample normalised error <= {recommendation.bound:.3g} "
                  f"(false-accusation rate <= {recommendation.false_accusation_rate:.2g}, "
                  f"attack min {recommendation.attack_margin:.3g}x the bound); report in {out}/ ({JSON_FILE})",
                  highlight=False)
