"""The sweep's outputs: ``sweep.csv`` / ``sweep.json`` (one row per run), ``SUMMARY.md`` (the table by f
and r) and ``sweep.png`` (accuracy against r per f with the ``all`` line, measured escapes against
the bound)."""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from bmoe.experiments.sampling_sweep.sweep import ALL, NONE, SAMPLED, SweepSettings

Row = Mapping[str, Any]
COLUMNS = ("unit", "mode", "f", "r", "edges", "colluders", "rounds", "mean_accuracy", "test_accuracy",
           "served_accuracy", "decisions", "accepted", "rejected", "disputed", "edges_per_decision", "colluder_samples",
           "majority_samples", "manipulated", "escape_rate", "colluder_sample_rate", "bound",
           "bound_without_disputes", "split_probability", "update_decisions", "update_manipulated", "served_decisions",
           "served_manipulated", "unverified", "edge_seconds", "seconds")
FILES = ("sweep.csv", "sweep.json", "SUMMARY.md", "sweep.png")


def _atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def write_report(out: Path, settings: SweepSettings, rows: Sequence[Row], command: str) -> None:
    out.mkdir(parents=True, exist_ok=True)
    _atomic(out / "sweep.json", json.dumps({"command": command, "settings": settings.to_dict(),
                                            "rows": list(rows)}, indent=2) + "\n")
    tmp = out / ".sweep.csv.tmp"
    with tmp.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    os.replace(tmp, out / "sweep.csv")
    _atomic(out / "SUMMARY.md", summary_markdown(settings, rows, command))
    plot(rows, out / "sweep.png", settings)


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}"


def _grid(rows: Sequence[Row], settings: SweepSettings, cell: Callable[[Row], str]) -> list[str]:
    """A table by f (rows) and r (columns, then ``all``), one ``cell`` per run."""
    by = {(row["mode"], row["f"], row["r"]): row for row in rows}
    ratios = sorted({row["f"] for row in rows if row["mode"] != NONE})
    replicas = sorted({row["r"] for row in rows if row["mode"] == SAMPLED})
    lines = ["| f (colluders) | " + " | ".join(f"r = {r}" for r in replicas) + " | `all` |",
             "|---|" + "---|" * (len(replicas) + 1)]
    for f in ratios:
        keys = [(SAMPLED, f, r) for r in replicas] + [(ALL, f, settings.edges)]
        cells = ["" if by.get(key) is None else cell(by[key]) for key in keys]
        colluding = next(row["colluders"] for row in rows if row["f"] == f and row["mode"] != NONE)
        lines.append(f"| {f:g} ({colluding}) | " + " | ".join(cells) + " |")
    return [*lines, ""]


def summary_markdown(settings: SweepSettings, rows: Sequence[Row], command: str) -> str:
    """The sweep's tables: accuracy, served accuracy, escapes against the bound, disputes."""
    reference = next((row for row in rows if row["mode"] == NONE), None)
    lines = ["# Sampled replication under a colluding attack, measured", "", f"`{command}`", "",
             f"{settings.dataset}, M = {settings.edges} edges, N = {settings.num_experts} experts, "
             f"K = {settings.top_k}, {settings.rounds} training rounds of {settings.batch_size} samples, "
             f"attack {settings.attack} {settings.attack_params}, seed {settings.seed}.", ""]
    if reference is not None:
        lines += [f"Without attackers: test accuracy {_pct(reference['mean_accuracy'])} % (mean over the second "
                  f"half), {_pct(reference['test_accuracy'])} % final"
                  + (f", served {_pct(reference['served_accuracy'])} %." if settings.serve else "."), ""]
    lines += ["## Test accuracy (%) trained under attack: mean over the second half of training (final)", ""]
    lines += _grid(rows, settings, lambda row: f"{_pct(row['mean_accuracy'])} ({_pct(row['test_accuracy'])})")
    if settings.serve:
        lines += ["## Accuracy (%) served through the framework among the same attackers", ""]
        lines += _grid(rows, settings, lambda row: _pct(row["served_accuracy"]))
    lines += ["## Manipulated results accepted per training decision: measured (bound)", "",
              "A decision is one activated expert of one task. Measured: the accepted result is not the one an "
              "honest edge computes. Bound: C(c, r)/C(M, r) (`bmoe bound`).", ""]
    lines += _grid(rows, settings, lambda row: f"{row['manipulated']}/{row['decisions']} = "
                                               f"{row['escape_rate']:.3g} ({row['bound']:.3g})")
    lines += ["## Disputed training decisions (%): measured (a mixed sample's probability) · edges deciding each", "",
              "A sample that mixes colluders and honest edges splits, is disputed and goes to every edge; "
              "probability 1 − (C(M − c, r) + C(c, r))/C(M, r) when colluders manipulate every expert.", ""]
    lines += _grid(rows, settings, lambda row: f"{_pct(row['disputed'] / max(1, row['decisions']))} "
                                               f"({_pct(row['split_probability'])}) · {row['edges_per_decision']:.2f}")
    if reference is not None:
        same = [row["unit"] for row in rows if row["mode"] != NONE and row["model"] == reference["model"]]
        lines += ["Runs that trained exactly the model of the run without attackers (no manipulated result "
                  f"accepted, so the same gate and expert CIDs): {', '.join(same) or 'none'}.", ""]
    unverified = sum(row["unverified"] for row in rows)
    lines += [f"Accepted results without an honest reference to compare them with: {unverified}.", ""]
    return "\n".join(lines)


def plot(rows: Sequence[Row], path: Path, settings: SweepSettings) -> None:
    ratios = sorted({row["f"] for row in rows if row["mode"] != NONE})
    reference = next((row for row in rows if row["mode"] == NONE), None)
    replicas = sorted({row["r"] for row in rows if row["mode"] == SAMPLED})
    panels = [("mean_accuracy", "test accuracy trained under attack\n(mean, 2nd half of training)")]
    if settings.serve:
        panels.append(("served_accuracy", "served accuracy (inference under attack)"))
    fig, axes = plt.subplots(1, len(panels) + 1, figsize=(5.2 * (len(panels) + 1), 4.2))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, (key, title) in zip(axes, panels, strict=False):
        for index, f in enumerate(ratios):
            colour = colours[index % len(colours)]
            sampled = sorted((row["r"], row[key]) for row in rows if row["mode"] == SAMPLED and row["f"] == f)
            if sampled:
                ax.plot(*zip(*sampled, strict=True), "o-", color=colour, label=f"sampled, f = {f:g}")
            for row in rows:
                if row["mode"] == ALL and row["f"] == f:
                    ax.axhline(row[key], color=colour, linestyle="--", linewidth=1, label=f"all, f = {f:g}")
        if reference is not None:
            ax.axhline(reference[key], color="black", linestyle=":", linewidth=1.2, label="no attack")
        ax.set(xlabel="sampled replicas r", ylabel="accuracy", title=title, xticks=replicas)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7, ncol=2)
    ax = axes[-1]
    for index, f in enumerate(ratios):
        colour = colours[index % len(colours)]
        sampled = sorted((row["r"], row["escape_rate"], row["bound"]) for row in rows
                         if row["mode"] == SAMPLED and row["f"] == f)
        if sampled:
            r, measured, bound = zip(*sampled, strict=True)
            ax.plot(r, measured, "o", color=colour, label=f"measured, f = {f:g}")
            ax.plot(r, bound, "-", color=colour, linewidth=1, label=f"bound C(c,r)/C(M,r), f = {f:g}")
    ax.set(xlabel="sampled replicas r", ylabel="manipulated results accepted per decision", xticks=replicas,
           title=f"escapes vs the bound (M = {settings.edges}; all: 0)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.suptitle(f"Sampled replication under a colluding {settings.attack} attack ({settings.dataset}, "
                 f"{settings.rounds} rounds)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
