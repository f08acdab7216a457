"""The runs behind the figures, one "unit" each, and what each records.

A unit trains one framework among one share of attackers for the reproduction's rounds; the units
trained without attack then serve the test set among every share of attackers of Fig. 4c, under each
reading of the attack. A finished unit is a JSON file; a killed reproduction redoes only the units
without one.

Which units depend on the reading: B-MoE trained among attackers, one unit per reading (its accepted
weights are the clean run's under both, but what the attackers publish, and so the ledger and its cost,
differ). Traditional training does not: the host's update is always adopted, so the noise it injects
becomes the expert's weights under both readings, and the two runs are the same, byte for byte
(tests/experiments/test_readings.py). One traditional unit per ratio serves both readings.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from bmoe.data import Dataset, load_dataset
from bmoe.experiments.reproduction.settings import READINGS, ReproSettings
from bmoe.ledger.encoding import canonical_json, sha256_hex
from bmoe.run.config import RunConfig
from bmoe.run.session import Session
from bmoe.verify.framework import framework_of

Progress = Callable[[str, int, int], None]  # (unit name, done, total)


@dataclass(frozen=True)
class Unit:
    framework: str
    ratio: float  # malicious ratio during training
    reading: str | None = None  # the attack's reading in training; None where the run does not depend on it

    @property
    def serve(self) -> bool:
        """Serve the test set among each ratio of Fig. 4c, under each reading (and Fig. 2's inference)."""
        return self.ratio == 0.0

    @property
    def name(self) -> str:
        return unit_name(self.framework, self.ratio, self.reading)

    def run(self, settings: ReproSettings, out: Path, progress: Progress) -> dict[str, Any]:
        return run_unit(settings, self, out, progress)


def unit_name(framework: str, ratio: float, reading: str | None = None) -> str:
    return f"{framework}-r{ratio:.1f}" + ("" if reading is None else f"-{reading}")


def training_unit(framework: str, ratio: float, reading: str) -> Unit:
    """The unit that trained ``framework`` at ``ratio`` under ``reading`` (shared where the reading is moot)."""
    return Unit(framework, ratio, reading if framework_of(framework).verifies and ratio > 0 else None)


def units_for(figures: tuple[str, ...], settings: ReproSettings) -> list[Unit]:
    """The units a set of figures needs (Fig. 2 needs only the traditional ones)."""
    wanted = set(figures) - {"gap"}
    if not wanted:
        return []
    frameworks = ("bmoe", "traditional") if wanted - {"fig2"} else ("traditional",)
    ratios = set(settings.train_ratios) if wanted & {"fig4a", "fig4b"} else {0.0}
    if "fig2" in wanted:
        ratios |= {0.0, settings.attacked_experts_ratio}
    units = {training_unit(fw, r, reading) for fw in frameworks for r in ratios for reading in settings.readings}
    # the longest first (serving, then B-MoE among persistent attackers, ...), so the last to finish is short
    return sorted(units, key=lambda u: (u.ratio != 0.0, not framework_of(u.framework).verifies,
                                        u.reading != "persistent", u.ratio))


def settings_hash(settings: ReproSettings) -> str:
    recorded = {k: v for k, v in settings.to_dict().items() if k not in ("workers",)}
    return sha256_hex(canonical_json(recorded))


class Job(Protocol):
    """What the runner runs: a named unit that writes its result under ``out/runs``."""

    @property
    def name(self) -> str: ...

    def run(self, settings: ReproSettings, out: Path, progress: Progress) -> dict[str, Any]: ...


def load_finished(out: Path, unit: Job, settings: ReproSettings) -> dict[str, Any] | None:
    """The unit's result if it finished under the same settings, else None (to be run again)."""
    path = out / "runs" / f"{unit.name}.json"
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
    config = settings.base_config(unit.reading or "transient").replace(
        framework=unit.framework, malicious_ratio=unit.ratio, threads=1)
    if not framework_of(unit.framework).keeps_ledger:
        config = config.replace(consensus="pow", validators=1)  # no ledger, so no consensus to run
    data = load_data(settings)
    by_noise = unit.framework == "traditional" and "persistent" in settings.readings
    passes = len(settings.readings) * len(settings.serve_ratios) + (len(settings.serve_noise_stds) if by_noise else 0)
    total = config.rounds + (passes * -(-data.num_test // settings.serve_batch) if unit.serve else 0)
    done = 0

    def tick(_: object) -> None:
        nonlocal done
        done += 1
        progress(unit.name, done, total)

    with Session(config, dataset=data, keep_objects=False, keep_evidence=False) as session:  # measured, not audited
        session.train(on_round=tick)
        history = [record for record in session.history if record["kind"] == "train"]
        result: dict[str, Any] = {
            "unit": unit.name, "framework": unit.framework, "train_ratio": unit.ratio,
            "settings_hash": settings_hash(settings), "config": config.to_dict(),
            "curve": [[r["round"] + 1, r["test_accuracy"]] for r in history if "test_accuracy" in r],
            "final_test_accuracy": final_accuracy(session, history),
            "train_counts": _sum_counts(history), "train_samples": sum(config.batch_size for _ in history),
            "rounds": [_round_timing(r) for r in history],
            "head_hash": session.head_hash,
        }
        if unit.serve:  # each share of attackers, a fresh set of them, serves the test set once
            result["served"] = {reading: {} for reading in settings.readings}
            for reading in settings.readings:
                for ratio in settings.serve_ratios:
                    served_config = config.replace(malicious_ratio=ratio, attack=READINGS[reading])
                    result["served"][reading][f"{ratio:.1f}"] = serve_once(session, served_config, settings, tick)
            if by_noise:
                result["served_noise"] = {}  # how the persistent reading's loss depends on the noise scale
                for std in settings.serve_noise_stds:
                    served_config = config.replace(malicious_ratio=settings.gap_ratio, attack=READINGS["persistent"],
                                                   attack_params={**config.attack_params, "noise_std": std})
                    result["served_noise"][f"{std:g}"] = serve_once(session, served_config, settings, tick)
    return finish_unit(out, unit.name, result, started, started_at)


def final_accuracy(session: Session, history: list[dict[str, Any]]) -> float:
    """The test accuracy of the trained model: the last round's evaluation (training evaluates after its last
    round), else evaluated now."""
    last = history[-1].get("test_accuracy") if history else None
    return float(last) if last is not None else session.evaluate()


def finish_unit(out: Path, name: str, result: dict[str, Any], started: float, started_at: float) -> dict[str, Any]:
    """Stamp the unit's times and write its JSON atomically (a killed run leaves no half-written unit)."""
    result["seconds"] = time.perf_counter() - started
    result["started_at"], result["finished_at"] = started_at, time.time()
    path = out / "runs" / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(result) + "\n")
    os.replace(tmp, path)
    return result


def serve_once(session: Session, config: RunConfig, settings: ReproSettings,
               tick: Callable[[object], None]) -> dict[str, Any]:
    """Among the attackers ``config`` describes (a fresh set), serve the test set once, in tasks of
    ``serve_batch``: the accuracy, the gate's routing counts and each task's correct answers, in order."""
    session.set_edge_behaviours(config)
    counts = [0] * config.num_experts

    def add_counts(outcome: Any) -> None:
        for e, c in enumerate(outcome.counts):
            counts[e] += c
        tick(outcome)

    correct = session.infer_test_tasks(settings.serve_batch, on_round=add_counts)
    samples = session.dataset.num_test
    return {"accuracy": sum(correct) / samples, "counts": counts, "samples": samples, "task_correct": correct}


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
