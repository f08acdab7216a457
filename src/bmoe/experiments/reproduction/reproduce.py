"""``bmoe reproduce``: run the units, draw the figures, write the tables, the config and REPORT.md."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from bmoe.experiments.reproduction.claims import summary
from bmoe.experiments.reproduction.figures import FIGURE_BUILDERS, write_table
from bmoe.experiments.reproduction.report import render
from bmoe.experiments.reproduction.runner import run_units
from bmoe.experiments.reproduction.settings import FIGURES, ReproSettings
from bmoe.experiments.reproduction.units import load_data, units_for


def reproduce(settings: ReproSettings, figures: tuple[str, ...], out: Path, console: Any,
              command: str = "bmoe reproduce") -> dict[str, Any]:
    """Everything the figures need, with resume; returns the claims summary."""
    figures = figures or FIGURES
    load_data(settings)  # fail fast, in one line, on missing or corrupt data
    out.mkdir(parents=True, exist_ok=True)
    units = units_for(figures, settings)
    started = time.perf_counter()
    results = run_units(settings, units, out, console)
    wall = time.perf_counter() - started
    (out / "config.json").write_text(json.dumps({
        "settings": settings.to_dict(), "run_config": settings.base_config().to_dict(),
        "figures": list(figures), "units": [u.name for u in units],
        "unit_seconds": {u.name: results[u.name]["seconds"] for u in units}}, indent=2) + "\n")
    tables = {}
    for figure in figures:
        rows_of, plot = FIGURE_BUILDERS[figure]
        tables[figure] = rows_of(results, settings)
        write_table(out, figure, tables[figure])
        plot(tables[figure], out / f"{figure}.png", settings.dataset)
    report = render(results, settings, figures, wall, tables, command)
    (out / "REPORT.md").write_text(report)
    claims = summary(results, settings) if set(figures) >= {"fig2", "fig4a", "fig4c"} else {}
    (out / "claims.json").write_text(json.dumps(claims, indent=2) + "\n")
    return claims
