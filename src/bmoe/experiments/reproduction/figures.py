"""The figures: every plotted number as table rows (written as CSV and JSON, a ``reading`` column saying
which reading of the attack each row is under), and a PNG per figure and reading."""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from bmoe.experiments.reproduction.latency import COMPONENTS, mean_latency
from bmoe.experiments.reproduction.settings import ReproSettings
from bmoe.experiments.reproduction.units import training_unit

Results = Mapping[str, Mapping[str, Any]]
FRAMEWORK_LABEL = {"bmoe": "B-MoE", "traditional": "traditional"}


def _unit(results: Results, framework: str, ratio: float, reading: str = "transient") -> Mapping[str, Any]:
    """The unit that trained ``framework`` at ``ratio`` under ``reading``."""
    return results[training_unit(framework, ratio, reading).name]


def served(results: Results, framework: str, reading: str) -> Mapping[str, Any]:
    """What the model ``framework`` trained clean served under ``reading``, keyed by malicious ratio ("0.3")."""
    return _unit(results, framework, 0.0)["served"][reading]


def fig2_rows(results: Results, settings: ReproSettings) -> list[dict[str, Any]]:
    return [row for reading in settings.readings for row in _fig2_rows(results, settings, reading)]


def _fig2_rows(results: Results, settings: ReproSettings, reading: str) -> list[dict[str, Any]]:
    """Activation ratio of each expert in the traditional framework (samples routed / all samples)."""
    attacked = settings.attacked_experts_ratio
    clean = _unit(results, "traditional", 0.0)
    under_attack = _unit(results, "traditional", attacked, reading)
    served_by = served(results, "traditional", reading)
    sources = {
        ("training", "not attacked"): (clean["train_counts"], clean["train_samples"]),
        ("training", "attacked"): (under_attack["train_counts"], under_attack["train_samples"]),
        ("inference", "not attacked"): (served_by["0.0"]["counts"], served_by["0.0"]["samples"]),
        ("inference", "attacked"): (served_by[f"{attacked:.1f}"]["counts"], served_by[f"{attacked:.1f}"]["samples"]),
    }
    malicious = _malicious_experts(attacked)
    rows = []
    for (phase, condition), (counts, samples) in sources.items():
        for expert, count in enumerate(counts):
            rows.append({"reading": reading, "phase": phase, "condition": condition, "expert": expert,
                         "malicious_edge": expert in malicious, "activation_ratio": count / samples})
    return rows


def _malicious_experts(ratio: float, experts: int = 10) -> set[int]:
    bad = int(ratio * experts + 0.5)
    return set(range(experts - bad, experts))


def fig4a_rows(results: Results, settings: ReproSettings) -> list[dict[str, Any]]:
    rows = []
    for reading in settings.readings:
        for framework in ("bmoe", "traditional"):
            for ratio in settings.train_ratios:
                for round_index, accuracy in _unit(results, framework, ratio, reading)["curve"]:
                    rows.append({"reading": reading, "framework": framework, "malicious_ratio": ratio,
                                 "round": round_index, "test_accuracy": accuracy})
    return rows


def fig4b_rows(results: Results, settings: ReproSettings) -> list[dict[str, Any]]:
    rows = []
    for reading in settings.readings:
        for framework in ("bmoe", "traditional"):
            for ratio in settings.train_ratios:
                parts = mean_latency(_unit(results, framework, ratio, reading)["rounds"], framework, settings.latency)
                rows.append({"reading": reading, "framework": framework, "malicious_ratio": ratio, **parts,
                             "total": sum(parts.values())})
    return rows


def fig4c_rows(results: Results, settings: ReproSettings) -> list[dict[str, Any]]:
    rows = []
    for reading in settings.readings:
        for framework in ("bmoe", "traditional"):
            served_by = served(results, framework, reading)
            for ratio in settings.serve_ratios:
                rows.append({"reading": reading, "framework": framework, "malicious_ratio": ratio,
                             "inference_accuracy": served_by[f"{ratio:.1f}"]["accuracy"]})
    return rows


def write_table(out: Path, name: str, rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None) -> None:
    """``name``.json with the rows whole, ``name``.csv with ``columns`` (default: every key of the first row)."""
    (out / f"{name}.json").write_text(json.dumps(list(rows), indent=1) + "\n")
    with (out / f"{name}.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(columns or rows[0]), extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


def stacked_bars(ax: Any, rows: Sequence[Mapping[str, Any]], parts: Sequence[str], labels: Sequence[str]) -> None:
    """One bar per row, stacked from its ``parts`` (a missing part counts 0)."""
    bottom = [0.0] * len(rows)
    for part in parts:
        heights = [r[part] or 0.0 for r in rows]
        ax.bar(range(len(rows)), heights, bottom=bottom, label=part)
        bottom = [b + h for b, h in zip(bottom, heights, strict=True)]
    ax.set_xticks(range(len(rows)), labels, fontsize=8)


def plot_fig2(rows: Sequence[Mapping[str, Any]], path: Path, label: str) -> None:
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    for ax, phase in zip(axes, ("training", "inference"), strict=True):
        for offset, condition in ((-0.2, "not attacked"), (0.2, "attacked")):
            sel = [r for r in rows if r["phase"] == phase and r["condition"] == condition]
            ax.bar([r["expert"] + offset for r in sel], [r["activation_ratio"] for r in sel], width=0.4,
                   label=condition, color="tab:blue" if condition == "not attacked" else "tab:red")
        bad = sorted({r["expert"] for r in rows if r["malicious_edge"]})
        if bad:
            ax.axvspan(bad[0] - 0.5, bad[-1] + 0.5, color="grey", alpha=0.15, label="on malicious edges")
        ax.set_title(f"{phase} (traditional; {label})")
        ax.set_xlabel("expert")
        ax.set_xticks(range(10))
    axes[0].set_ylabel("activation ratio (routed samples / all samples)")
    axes[1].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_fig4a(rows: Sequence[Mapping[str, Any]], path: Path, label: str) -> None:
    fig, ax = plt.subplots(figsize=(8, 5))
    ratios = sorted({r["malicious_ratio"] for r in rows})
    colours = plt.cm.viridis([i / max(1, len(ratios) - 1) for i in range(len(ratios))])
    for colour, ratio in zip(colours, ratios, strict=True):
        for framework, style in (("bmoe", "-"), ("traditional", "--")):
            sel = [r for r in rows if r["framework"] == framework and r["malicious_ratio"] == ratio]
            name = f"{FRAMEWORK_LABEL[framework]}, " + ("no attack" if ratio == 0 else f"malicious {ratio:.1f}")
            ax.plot([r["round"] for r in sel], [r["test_accuracy"] for r in sel], style, color=colour, label=name)
    ax.set_xlabel("training round")
    ax.set_ylabel("test accuracy")
    ax.set_title(f"Fig. 4a: test accuracy during training ({label})")
    ax.legend(fontsize=8, ncol=2)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_fig4b(rows: Sequence[Mapping[str, Any]], path: Path, label: str) -> None:
    fig, ax = plt.subplots(figsize=(9, 5))
    stacked_bars(ax, rows, COMPONENTS, [f"{FRAMEWORK_LABEL[r['framework']]}\n{r['malicious_ratio']:.1f}" for r in rows])
    ax.set_xlabel("framework / malicious ratio")
    ax.set_ylabel("seconds per training round")
    ax.set_title(f"Fig. 4b: latency per training round ({label})")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_fig4c(rows: Sequence[Mapping[str, Any]], path: Path, label: str) -> None:
    fig, ax = plt.subplots(figsize=(7, 5))
    for framework, marker in (("bmoe", "o"), ("traditional", "s")):
        sel = [r for r in rows if r["framework"] == framework]
        ax.plot([r["malicious_ratio"] for r in sel], [r["inference_accuracy"] for r in sel], marker=marker,
                label=FRAMEWORK_LABEL[framework])
    ax.axvline(0.5, color="grey", linestyle=":", label="50 % malicious")
    ax.set_xlabel("malicious ratio")
    ax.set_ylabel("inference accuracy")
    ax.set_title(f"Fig. 4c: inference among malicious edges ({label})")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def figure_label(dataset: str, reading: str) -> str:
    return f"{dataset}, {'noise kept' if reading == 'persistent' else 'fresh noise'}"


FIGURE_BUILDERS = {
    "fig2": (fig2_rows, plot_fig2),
    "fig4a": (fig4a_rows, plot_fig4a),
    "fig4b": (fig4b_rows, plot_fig4b),
    "fig4c": (fig4c_rows, plot_fig4c),
}
