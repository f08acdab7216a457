"""The runs behind the figures, one "unit" each, and what each records.

A unit trains one framework among one share of attackers for the reproduction's rounds; the units
trained without attack then serve the test set among every share of attackers of Fig. 4c. A
finished unit is a JSON file; a killed reproduction redoes only the units without one.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bmoe.data import Dataset, load_dataset
from bmoe.experiments.reproduction.settings import FIGURES, ReproSettings
from bmoe.ledger.encoding import canonical_json, sha256_hex
from bmoe.protocol.session import Session

Progress = Callable[[str, int, int], None]  # (unit name, done, total)


@dataclass(frozen=True)
class Unit:
    framework: str
    ratio: float  # malicious ratio during training
    serve: bool  # serve the test set among each ratio of Fig. 4c (and Fig. 2's inference)

    @property
    def name(self) -> str:
        return f"{self.framework}-r{self.ratio:.1f}"


def units_for(figures: tuple[str, ...], settings: ReproSettings) -> list[Unit]:
    """The units a set of figures needs (Fig. 2 needs only the traditional ones)."""
    wanted = set(figures if figures else FIGURES)
    frameworks = ("bmoe", "traditional") if wanted - {"fig2"} else ("traditional",)
    ratios = set(settings.train_ratios) if wanted & {"fig4a", "fig4b"} else {0.0}
    if "fig2" in wanted:
        ratios |= {0.0, settings.attacked_experts_ratio}
    units = [Unit(fw, r, serve=r == 0.0) for fw in frameworks for r in sorted(ratios)]
    return sorted(units, key=lambda u: (u.ratio != 0.0, u.framework, u.ratio))  # serving units first


def settings_hash(settings: ReproSettings) -> str:
    recorded = {k: v for k, v in settings.to_dict().items() if k not in ("workers",)}
    return sha256_hex(canonical_json(recorded))


def unit_path(out: Path, unit: Unit) -> Path:
    return out / "runs" / f"{unit.name}.json"


def load_finished(out: Path, unit: Unit, settings: ReproSettings) -> dict[str, Any] | None:
    """The unit's result if it finished under the same settings, else None (to be run again)."""
    path = unit_path(out, unit)
    try:
        result = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return result if result.get("settings_hash") == settings_hash(settings) else None


def load_data(settings: ReproSettings) -> Dataset:
    data_dir = None if settings.data_dir is None else Path(settings.data_dir)
    return load_dataset(settings.dataset, data_dir, settings.seed, None, settings.limit_test)


def run_unit(settings: ReproSettings, unit: Unit, out: Path, progress: Progress) -> dict[str, Any]:
    """Train (and serve), write the unit's JSON atomically, return it."""
    started, started_at = time.perf_counter(), time.time()
    config = settings.base_config().replace(framework=unit.framework, malicious_ratio=unit.ratio, threads=1)
    if unit.framework == "traditional":
        config = config.replace(consensus="pow", validators=1)  # no ledger, so no consensus to run
    data = load_data(settings)
    total = config.rounds + (len(settings.serve_ratios) * -(-data.num_test // settings.serve_batch)
                             if unit.serve else 0)
    done = 0

    def tick(_: object) -> None:
        nonlocal done
        done += 1
        progress(unit.name, done, total)

    with Session(config, dataset=data, keep_objects=False) as session:
        session.train(on_round=tick)
        history = [record for record in session.history if record["kind"] == "train"]
        result: dict[str, Any] = {
            "unit": unit.name, "framework": unit.framework, "train_ratio": unit.ratio,
            "settings_hash": settings_hash(settings), "config": config.to_dict(),
            "curve": [[r["round"] + 1, r["test_accuracy"]] for r in history if "test_accuracy" in r],
            "final_test_accuracy": session.evaluate(),
            "train_counts": _sum_counts(history), "train_samples": sum(config.batch_size for _ in history),
            "rounds": [_round_timing(r) for r in history],
            "head_hash": session.head_hash,
        }
        if unit.serve:
            result["served"] = {}
            for ratio in settings.serve_ratios:
                session.set_edge_behaviours(config.replace(malicious_ratio=ratio))
                counts = [0] * config.num_experts

                def add_counts(outcome: Any, counts: list[int] = counts) -> None:
                    for e, c in enumerate(outcome.counts):
                        counts[e] += c
                    tick(outcome)

                accuracy = session.infer_test_set(batch_size=settings.serve_batch, on_round=add_counts)
                result["served"][f"{ratio:.1f}"] = {"accuracy": accuracy, "counts": counts,
                                                    "samples": data.num_test}
    result["seconds"] = time.perf_counter() - started
    result["started_at"], result["finished_at"] = started_at, time.time()
    path = unit_path(out, unit)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(result) + "\n")
    os.replace(tmp, path)
    return result


def _sum_counts(history: list[dict[str, Any]]) -> list[int]:
    totals = [0] * len(history[0]["counts"]) if history else []
    for record in history:
        for e, c in enumerate(record["counts"]):
            totals[e] += c
    return totals


TIMING_KEYS = ("time_gate", "time_compute", "time_verify", "time_loss", "time_update", "time_consensus",
               "time_mine", "time_edge", "bytes_max_edge", "bytes_total", "block_bytes")


def _round_timing(record: dict[str, Any]) -> dict[str, float]:
    return {key: record[key] for key in TIMING_KEYS}
