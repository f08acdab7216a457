"""Owns the divergence measurement: every profile computes the probe (in this process, or in a
worker process started with the profile's environment), and each pair of profiles' results becomes
a distribution per metric:

- ``output_abs``: element-wise |Δ| of the outputs;
- ``output_rel``: element-wise |Δ| / max(|a|, |b|) (0 where both are 0);
- ``per_sample``: per row ‖Δ‖₂ / max(‖a‖₂, ‖b‖₂, NORM_FLOOR) (the floor keeps a near-zero row from
  dividing by ~0: such a row is compared in absolute terms);
- ``update_abs``: element-wise |Δ| of the updated weights.

Must not know: which bound is recommended, file formats.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path

import numpy as np
import torch

from bmoe.edge.profiles import DEFAULT, get_profile
from bmoe.experiments.calibration.compute import Computed, Probe, compute_probe
from bmoe.experiments.calibration.probe import gaussian_attack

NORM_FLOOR = 0.1  # logit rows with a smaller norm are compared in absolute terms (bound × NORM_FLOOR)
QUANTILES = (0.5, 0.9, 0.99, 0.999)
OUTPUT_METRICS = ("output_abs", "output_rel", "per_sample")
METRICS = (*OUTPUT_METRICS, "update_abs")


class WorkerFailed(RuntimeError):
    """A worker process for an environment profile failed; the message carries its last error line."""


@dataclass(frozen=True)
class PairDivergence:
    """One pair of profiles' divergences: metric -> all values (float64, flat)."""

    a: str
    b: str
    values: dict[str, np.ndarray]


def summary(values: np.ndarray) -> dict[str, float]:
    """Quantiles (p50 ... p99.9), max, min and the share of non-zero values."""
    if values.size == 0:
        return {}
    stats = {f"p{100 * q:g}": float(np.quantile(values, q)) for q in QUANTILES}
    return {**stats, "max": float(values.max()), "min": float(values.min()),
            "nonzero_share": float(np.count_nonzero(values) / values.size), "count": int(values.size)}


def per_sample_error(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """‖a - b‖ / max(‖a‖, ‖b‖, NORM_FLOOR) per row: (S,) float64 from (S, C) outputs."""
    a64, b64 = a.double(), b.double()  # (S, C)
    scale = torch.maximum(a64.norm(dim=1), b64.norm(dim=1)).clamp(min=NORM_FLOOR)  # (S,)
    return (a64 - b64).norm(dim=1) / scale  # (S,)


def _relative(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    delta = (a.double() - b.double()).abs()  # (S, C)
    scale = torch.maximum(a.double().abs(), b.double().abs())  # (S, C)
    return torch.where(scale > 0, delta / scale.clamp(min=torch.finfo(torch.float64).tiny), 0.0)


def divergence(a: Computed, b: Computed) -> dict[str, np.ndarray]:
    """Every metric over all weight sets of two profiles' results."""
    parts: dict[str, list[torch.Tensor]] = {metric: [] for metric in METRICS}
    for out_a, out_b, upd_a, upd_b in zip(a.outputs, b.outputs, a.updates, b.updates, strict=True):
        parts["output_abs"].append((out_a.double() - out_b.double()).abs().flatten())  # (S*C,)
        parts["output_rel"].append(_relative(out_a, out_b).flatten())  # (S*C,)
        parts["per_sample"].append(per_sample_error(out_a, out_b))  # (S,)
        parts["update_abs"].append((upd_a.double() - upd_b.double()).abs())  # (P,)
    return {metric: torch.cat(chunks).numpy() for metric, chunks in parts.items()}


def _in_worker(name: str, probe_file: Path, threads: int) -> Computed:
    out = probe_file.with_name(f"{name}.pt")
    env = {**os.environ, **dict(get_profile(name).env)}
    done = subprocess.run([sys.executable, "-m", "bmoe.experiments.calibration.worker", str(probe_file), str(out),
                           "--profile", name, "--threads", str(threads)], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        lines = [line for line in done.stderr.splitlines() if line.strip()] or [f"exit {done.returncode}"]
        raise WorkerFailed(f"profile {name}: its worker process failed: {lines[-1]}")
    return Computed.load(out)


def compute_all(probe: Probe, names: tuple[str, ...], threads: int) -> dict[str, Computed]:
    """Each named profile's results; environment profiles in a worker process started with their variables."""
    results: dict[str, Computed] = {}
    with tempfile.TemporaryDirectory(prefix="bmoe-calibrate-") as scratch:
        probe_file = Path(scratch) / "probe.pt"
        for name in names:
            profile = get_profile(name)
            if profile.in_process:
                results[name] = compute_probe(profile, probe)
            else:
                if not probe_file.exists():
                    probe.save(probe_file)
                results[name] = _in_worker(name, probe_file, threads)
    return results


def profile_pairs(names: tuple[str, ...]) -> list[tuple[str, str]]:
    """``default`` against every other profile first, then every other pair."""
    others = [name for name in names if name != DEFAULT]
    return [(DEFAULT, name) for name in others] + list(combinations(others, 2))


def measure_pairs(results: dict[str, Computed]) -> list[PairDivergence]:
    return [PairDivergence(a, b, divergence(results[a], results[b])) for a, b in profile_pairs(tuple(results))]


def attack_divergence(probe: Probe, honest: Computed, noise_std: float, seed: int) -> dict[str, np.ndarray]:
    """The paper's Gaussian weight noise, computed under ``default``, against honest ``default`` results:
    the attacker's outputs and the update it uploads (its noisy weights after the same SGD step)."""
    noisy = gaussian_attack(probe, noise_std, seed)
    attacked = Probe(probe.spec, probe.names, noisy, probe.x, probe.grads, probe.lr)
    return divergence(compute_probe(get_profile(DEFAULT), attacked), honest)


def attack_scan(probe: Probe, honest: Computed, noise_stds: tuple[float, ...], seed: int) -> dict[float, np.ndarray]:
    """The per-sample divergence the Gaussian attack causes at each of ``noise_stds`` (weaker fraud)."""
    return {std: attack_divergence(probe, honest, std, seed)["per_sample"] for std in noise_stds}
