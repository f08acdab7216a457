"""Owns the calibration's files: ``calibration.json`` (every number and the recommendation, what a
later ``--comparison tolerance --bound-from calibration.json`` reads), ``calibration.md`` (a short
report with a table) and ``divergence.png`` (a log-x histogram of the per-sample normalised error
per profile pair, with the bound and the attack marked).

The files are written into a temporary directory beside DIR, which is renamed to DIR at the end:
DIR appears complete or not at all.

Must not know: how divergence was measured.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bmoe.experiments.calibration.bound import Recommendation
from bmoe.experiments.calibration.measure import METRICS, PairDivergence, summary

JSON_FILE, MARKDOWN_FILE, PLOT_FILE = "calibration.json", "calibration.md", "divergence.png"
VERSION = 1  # calibration.json's format, checked by --bound-from (reading.py)


@dataclass(frozen=True)
class Calibration:
    """Everything a report shows."""

    settings: dict[str, Any]
    skipped: list[str]
    pairs: list[PairDivergence]
    attack: dict[str, np.ndarray]
    stability: dict[str, dict[str, float | None]]
    recommendation: Recommendation


def to_json(calibration: Calibration) -> dict[str, Any]:
    return {
        "version": VERSION,
        "use": "the bound a tolerance comparison reads: --comparison tolerance --bound-from calibration.json",
        "settings": calibration.settings,
        "skipped": calibration.skipped,
        "pairs": [{"a": pair.a, "b": pair.b, **{metric: summary(pair.values[metric]) for metric in METRICS}}
                  for pair in calibration.pairs],
        "pooled": {metric: summary(np.concatenate([pair.values[metric] for pair in calibration.pairs]))
                   for metric in METRICS},
        "stability": calibration.stability,
        "attack": {"name": "gaussian", "noise_std": calibration.settings["attack_noise_std"],
                   **{metric: summary(values) for metric, values in calibration.attack.items()}},
        "recommendation": calibration.recommendation.to_dict(),
    }


def _fmt(value: float | None) -> str:
    return "unbounded" if value is None else "0" if value == 0 else f"{value:.2g}"


def to_markdown(calibration: Calibration) -> str:
    rec, settings = calibration.recommendation, calibration.settings
    lines = [
        "# Calibration: honest divergence across numeric profiles", "",
        f"{settings['dataset']}, {settings['experts']} {settings['preset']} experts (initial and after "
        f"{settings['train_steps']} SGD steps), {settings['samples']} test samples, seed {settings['seed']}, "
        f"torch {settings['torch']} on {settings['device']}; fleet `{settings['fleet']}`.", "",
        "| pair | output abs p50 / p99.9 / max | output rel max | per-sample p50 / p99 / p99.9 / max "
        "| update abs max |",
        "|---|---|---|---|---|",
    ]
    for pair in calibration.pairs:
        out, rel, row, upd = (summary(pair.values[m]) for m in METRICS)
        lines.append(f"| {pair.a} vs {pair.b} | {_fmt(out['p50'])} / {_fmt(out['p99.9'])} / {_fmt(out['max'])} "
                     f"| {_fmt(rel['max'])} | {_fmt(row['p50'])} / {_fmt(row['p99'])} / {_fmt(row['p99.9'])} / "
                     f"{_fmt(row['max'])} | {_fmt(upd['max'])} |")
    attack = summary(calibration.attack["per_sample"])
    lines += [
        f"| attack (gaussian std {settings['attack_noise_std']}) vs default | | | min {_fmt(attack['min'])}, "
        f"p50 {_fmt(attack['p50'])} | p50 {_fmt(summary(calibration.attack['update_abs'])['p50'])} |", "",
        "Stability (pooled max / p99; largest / smallest per-pair max): "
        + "; ".join(f"{metric} {_fmt(s['tail_ratio'])}, {_fmt(s['pair_spread'])}"
                    for metric, s in calibration.stability.items()) + ".", "",
        f"**Recommended bound**: per-sample ‖Δ‖/max(‖y‖, {rec.norm_floor}) ≤ **{rec.bound:.3g}** "
        f"({rec.safety_factor:g} × the observed maximum {rec.observed_max:.3g}). Honest comparisons above it: "
        f"{rec.above_bound} of {rec.honest_comparisons}; false-accusation rate per sample ≤ "
        f"{rec.false_accusation_rate:.2g} ({rec.false_accusation_basis}). The attack's smallest divergence is "
        f"{rec.attack_min:.3g}, {rec.attack_margin:.3g} × the bound. Weaker noise (std: median divergence, share of "
        f"samples caught): " + ", ".join(f"{row['noise_std']:g}: {row['median']:.2g}, {row['caught_share']:.0%}"
                                        for row in rec.attack_scan)
        + f". Updates: |Δw| ≤ {rec.update_bound:.3g} "
        f"({rec.safety_factor:g} × {rec.update_observed_max:.3g}; the attack's median {rec.update_attack_median:.3g}).",
        "", f"Numbers in `{JSON_FILE}`; histogram in `{PLOT_FILE}`.",
    ]
    lines += [f"- skipped: {note}" for note in calibration.skipped]
    return "\n".join(lines) + "\n"


def plot(calibration: Calibration, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rec = calibration.recommendation
    attack = calibration.attack["per_sample"]
    tiny = 1e-12  # bit-identical rows (0) are drawn at this left edge
    low = max(min(tiny, float(attack.min())), tiny)
    bins = np.logspace(math.log10(low), math.log10(max(float(attack.max()), rec.bound) * 2), 80)
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for pair in calibration.pairs:
        values = np.clip(pair.values["per_sample"], tiny, None)
        ax.hist(values, bins=bins, histtype="step", label=f"{pair.a} vs {pair.b}")
    ax.hist(attack, bins=bins, histtype="stepfilled", alpha=0.3, color="red",
            label=f"attack: gaussian std {calibration.settings['attack_noise_std']}")
    ax.axvline(rec.bound, color="black", linestyle="--", label=f"recommended bound {rec.bound:.2g}")
    ax.set_xscale("log")
    ax.set_xlabel(f"per-sample ‖Δ‖ / max(‖y‖, {rec.norm_floor})  (0 drawn at {tiny:g})")
    ax.set_ylabel("samples")
    ax.set_title(f"Honest divergence, {calibration.settings['dataset']} ({calibration.settings['preset']})")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_report(calibration: Calibration, out: Path) -> None:
    """Write the three files to a temporary directory beside ``out``, then rename it to ``out``."""
    out.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        (scratch / JSON_FILE).write_text(json.dumps(to_json(calibration), indent=2) + "\n")
        (scratch / MARKDOWN_FILE).write_text(to_markdown(calibration))
        plot(calibration, scratch / PLOT_FILE)
        scratch.chmod(0o755)
        if out.is_dir():
            out.rmdir()  # checked empty before any work; rename needs it gone or empty
        os.rename(scratch, out)
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise

