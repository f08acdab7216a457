"""``bmoe reproduce``: run the units, draw the figures, write the tables, the config and REPORT.md."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bmoe.experiments.reproduction.claims import PAPER_TRAINING_GAIN, summary
from bmoe.experiments.reproduction.cluster_latency import cluster_rows, report_section
from bmoe.experiments.reproduction.figures import FIGURE_BUILDERS, figure_label, write_table
from bmoe.experiments.reproduction.inference_gap import by_noise, over_the_pass, plot_inference_gap
from bmoe.experiments.reproduction.report import render
from bmoe.experiments.reproduction.runner import run_units
from bmoe.experiments.reproduction.settings import FIGURES, ReproSettings
from bmoe.experiments.reproduction.training_gap import conditions, gain_by_rounds, gap_rows, plot_gap
from bmoe.experiments.reproduction.units import Job, load_data, units_for


def reproduction_wall_seconds(results: list[dict[str, Any]], workers: int) -> float:
    """From the first unit's start to the last unit's end (across resumed invocations too)."""
    if all("started_at" in r for r in results):
        return max(r["finished_at"] for r in results) - min(r["started_at"] for r in results)
    return sum(r["seconds"] for r in results) / max(1, workers)  # older results: an estimate


def reproduce(settings: ReproSettings, figures: tuple[str, ...], out: Path, console: Any,
              command: str = "bmoe reproduce", cluster_rounds: int | None = None) -> dict[str, Any]:
    """Everything the figures need, with resume; returns the claims summary. ``cluster_rounds``: also
    measure Fig. 4b on a local cluster, that many rounds per framework (REPORT.md gets a section)."""
    figures = figures or FIGURES
    data = load_data(settings)  # fail fast, in one line, on missing or corrupt data
    out.mkdir(parents=True, exist_ok=True)
    units: list[Job] = [*units_for(figures, settings), *(conditions(settings) if "gap" in figures else [])]
    results = run_units(settings, units, out, console)
    wall = reproduction_wall_seconds([results[u.name] for u in units], settings.workers)
    (out / "config.json").write_text(json.dumps({
        "settings": settings.to_dict(), "run_config": {r: settings.base_config(r).to_dict() for r in settings.readings},
        "figures": list(figures), "units": [u.name for u in units],
        "unit_seconds": {u.name: results[u.name]["seconds"] for u in units}}, indent=2) + "\n")
    tables: dict[str, list[dict[str, Any]]] = {}
    for figure in figures:
        if figure == "gap":
            tables["gap"], tables["gap_by_rounds"] = gap_rows(results, settings), gain_by_rounds(results, settings)
            write_table(out, "gap", tables["gap"])
            plot_gap(tables["gap"], tables["gap_by_rounds"], out / "gap.png", settings.dataset, PAPER_TRAINING_GAIN)
            continue
        rows_of, plot = FIGURE_BUILDERS[figure]
        tables[figure] = rows_of(results, settings)
        write_table(out, figure, tables[figure])
        for reading in settings.readings:
            plot([r for r in tables[figure] if r["reading"] == reading], out / f"{figure}_{reading}.png",
                 figure_label(settings.dataset, reading))
    if "fig4c" in figures:  # the inference gap, from the clean units' serving passes
        write_table(out, "inference_gap", over_the_pass(results, settings))
        write_table(out, "inference_noise", by_noise(results, settings))
        plot_inference_gap(results, settings, out / "inference_gap.png", settings.dataset)
    report = render(results, settings, figures, wall, tables, command)
    if cluster_rounds is not None:
        rows = cluster_rows(settings, data, cluster_rounds, out, lambda line: console.print(line, highlight=False))
        report += report_section(rows, cluster_rounds, settings.latency.bandwidth_mbps)
    (out / "REPORT.md").write_text(report)
    claims = summary(results, settings) if set(figures) >= {"fig2", "fig4a", "fig4c"} else {}
    (out / "claims.json").write_text(json.dumps(claims, indent=2) + "\n")
    return claims
