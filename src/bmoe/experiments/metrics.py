"""Metrics files of a run directory: ``metrics.json`` (everything) and ``metrics.csv`` (per round)."""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def write_metrics(run_dir: Path, rounds: Sequence[Mapping[str, Any]], summary: Mapping[str, Any]) -> None:
    """Write both files atomically (a reader never sees half a file)."""
    _atomic_write(run_dir / "metrics.json", json.dumps({"summary": summary, "rounds": list(rounds)}, indent=2) + "\n")
    columns: list[str] = []
    for record in rounds:
        columns.extend(key for key in record if key not in columns)
    tmp = run_dir / ".metrics.csv.tmp"
    with tmp.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        for record in rounds:
            writer.writerow({key: record.get(key, "") for key in columns})
    os.replace(tmp, run_dir / "metrics.csv")
