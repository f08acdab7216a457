"""The sweep's runs: for each colluding fraction f one run per sampled r, one ``all`` run, and one run
without attackers; each trains, then serves the test set among the same attackers.

A run is a "unit": its result is a JSON file under ``OUT/runs``; a sweep run again with the same
settings reuses every finished unit. Units run in parallel processes (one per core, single-threaded).
"""

from __future__ import annotations

import dataclasses
import json
import math
import multiprocessing as mp
import os
import time
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bmoe.data import Dataset
from bmoe.experiments.sampling_sweep.measure import watch
from bmoe.ledger.encoding import canonical_json, sha256_hex
from bmoe.run.config import RunConfig, from_dict
from bmoe.run.fit import load_run_dataset
from bmoe.run.session import Session
from bmoe.verify.sampling_bound import colluders, escape_probability

NONE, ALL, SAMPLED = "none", "all", "sampled"


@dataclass(frozen=True)
class SweepSettings:
    """Everything a sweep's numbers depend on (``workers`` only changes how fast they come)."""

    ratios: tuple[float, ...] = (0.1, 0.2, 0.3, 0.4)  # f, the colluding fraction of the M edges
    replicas: tuple[int, ...] = (1, 2, 3, 4, 5)  # r, sampled replicas per (task, expert)
    dataset: str = "digits"
    data_dir: str | None = None
    rounds: int = 150
    batch_size: int = 100  # samples per task (paper: 1000)
    lr: float = 0.1  # digits' (RunConfig's default); the paper's Fashion-MNIST rate is 0.01
    num_experts: int = 10  # N (paper)
    top_k: int = 3  # K (paper)
    edges: int = 10  # M (paper)
    hidden: int = 256
    attack: str = "gaussian"  # the paper's attack, colluding: every malicious edge sends the same result
    # probability 1: colluders manipulate every expert they are sampled for, the attacker the bound assumes
    attack_params: dict[str, float] = field(default_factory=lambda: {"probability": 1.0})
    limit_test: int | None = None  # test samples (None: all)
    serve: bool = True  # also serve the test set through the framework among the attackers
    seed: int = 0
    workers: int = 2

    def base_config(self) -> RunConfig:
        return from_dict({
            "dataset": self.dataset, "data_dir": self.data_dir, "rounds": self.rounds,
            "batch_size": self.batch_size, "lr": self.lr, "num_experts": self.num_experts, "top_k": self.top_k,
            "num_edges": self.edges, "hidden": self.hidden, "attack": self.attack,
            "attack_params": dict(self.attack_params), "collude": True, "limit_test": self.limit_test,
            "eval_every": max(1, self.rounds // 10), "seed": self.seed, "threads": 1,
        })

    def units(self) -> list[Unit]:
        """The reference, then per f the ``all`` run and every sampled r."""
        units = [Unit(NONE, 0.0, self.edges)]
        for f in self.ratios:
            units.append(Unit(ALL, f, self.edges))
            units.extend(Unit(SAMPLED, f, r) for r in self.replicas)
        return units

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def hash(self) -> str:
        recorded = {k: v for k, v in self.to_dict().items() if k not in ("workers", "ratios", "replicas")}
        return sha256_hex(canonical_json(recorded))


@dataclass(frozen=True)
class Unit:
    mode: str  # none | all | sampled
    ratio: float  # f
    replicas: int  # r (M for all and none)

    @property
    def name(self) -> str:
        if self.mode == NONE:
            return "none"
        return f"all-f{self.ratio:.2f}" if self.mode == ALL else f"sampled-f{self.ratio:.2f}-r{self.replicas}"

    def config(self, settings: SweepSettings) -> RunConfig:
        base = settings.base_config()
        if self.mode == SAMPLED:
            return base.replace(assignment="sampled", replicas=self.replicas, malicious_ratio=self.ratio)
        return base.replace(malicious_ratio=self.ratio)


def escape_without_disputes(fraction: float, replicas: int, edges: int) -> float:
    """P(colluders are a majority of the r sampled replicas): what the majority rule among the sample
    alone lets through, were a split sample not escalated."""
    bad = colluders(fraction, edges)
    need = replicas // 2 + 1
    return sum(math.comb(bad, j) * math.comb(edges - bad, replicas - j)
               for j in range(need, replicas + 1)) / math.comb(edges, replicas)


def split_probability(fraction: float, replicas: int, edges: int) -> float:
    """P(the r sampled replicas mix colluders and honest edges): the share of decisions disputed when
    colluders manipulate every expert they compute and honest edges agree."""
    bad = colluders(fraction, edges)
    total = math.comb(edges, replicas)
    return 1 - (math.comb(edges - bad, replicas) + math.comb(bad, replicas)) / total


def run_unit(settings: SweepSettings, unit: Unit, data: Dataset | None = None,
             on_round: Callable[[], None] | None = None) -> dict[str, Any]:
    """Train ``unit`` (and serve the test set), counting every decision; the unit's result row.

    Under attack the accuracy swings (an accepted manipulated update wrecks an expert until training
    repairs it), so besides the final model's ``test_accuracy`` the row gives ``mean_accuracy``, the mean
    of the test evaluations (every tenth of the rounds) in the second half of training. ``model`` is a
    digest of the trained gate's and experts' CIDs: a run in which no manipulated result was accepted
    trains exactly the model of the run without attackers (same seed, same data order, exact
    comparison), so its ``model`` is the reference's."""
    started = time.perf_counter()
    config = unit.config(settings)
    data = data if data is not None else load_run_dataset(config)
    with Session(config, dataset=data, keep_objects=False) as session:
        reference, tally = watch(session)

        def count(_: object) -> None:
            tally.count_block(session.node.view(), reference)
            if on_round is not None:
                on_round()

        session.train(on_round=count)
        accuracy = session.evaluate()
        served = session.infer_test_set(on_round=count) if settings.serve else None
        history = [r for r in session.history if r["kind"] == "train"]
        curve = [[r["round"] + 1, r["test_accuracy"]] for r in history if "test_accuracy" in r]
        late = [accuracy for done, accuracy in curve if 2 * done > settings.rounds]
        edge_seconds = sum(r["time_edge_total"] for r in history)
        state = session.node.view()
        model = sha256_hex(canonical_json([state.gate_cid, *state.expert_cids]))
    train, update, infer = tally.get("train/result"), tally.get("train/update"), tally.get("infer/result")
    f, r, m = unit.ratio, unit.replicas, settings.edges
    return {
        "unit": unit.name, "mode": unit.mode, "f": f, "r": r, "edges": m, "colluders": config.malicious_edges,
        "rounds": settings.rounds, "test_accuracy": accuracy,
        "mean_accuracy": sum(late) / len(late), "served_accuracy": served,
        "final_loss": history[-1]["loss"] if history else None,
        "decisions": train.decisions, "accepted": train.accepted, "rejected": train.rejected,
        "disputed": train.disputed, "edges_per_decision": train.deciding_edges / max(1, train.decisions),
        "colluder_samples": train.colluder_samples, "majority_samples": train.majority_samples,
        "manipulated": train.manipulated, "escape_rate": train.manipulated / max(1, train.decisions),
        "colluder_sample_rate": train.colluder_samples / max(1, train.decisions),
        "bound": escape_probability(f, r, m),
        "bound_without_disputes": escape_without_disputes(f, r, m),
        "split_probability": split_probability(f, r, m) if unit.mode == SAMPLED else 0.0,
        "update_decisions": update.decisions, "update_manipulated": update.manipulated,
        "served_decisions": infer.decisions, "served_manipulated": infer.manipulated,
        "unverified": train.unverified + update.unverified + infer.unverified,
        "edge_seconds": edge_seconds, "seconds": time.perf_counter() - started,
        "model": model, "curve": curve, "counts": {key: value.to_dict() for key, value in sorted(tally.counts.items())},
    }


# ------------------------------------------------------------------ running many, resuming


def unit_path(out: Path, unit: Unit) -> Path:
    return out / "runs" / f"{unit.name}.json"


def load_finished(out: Path, unit: Unit, settings: SweepSettings) -> dict[str, Any] | None:
    try:
        saved = json.loads(unit_path(out, unit).read_text())
    except (OSError, ValueError):
        return None
    return saved.get("row") if saved.get("settings_hash") == settings.hash() else None


def _save(out: Path, unit: Unit, settings: SweepSettings, row: dict[str, Any]) -> None:
    path = unit_path(out, unit)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps({"settings_hash": settings.hash(), "settings": settings.to_dict(),
                               "config": unit.config(settings).to_dict(), "row": row}, indent=2) + "\n")
    os.replace(tmp, path)


def _run_and_save(settings: SweepSettings, unit: Unit, out: Path) -> dict[str, Any]:
    row = run_unit(settings, unit)
    _save(out, unit, settings, row)
    return row


def run_sweep(settings: SweepSettings, out: Path,
              on_done: Callable[[Unit, dict[str, Any], bool], None] | None = None) -> list[dict[str, Any]]:
    """Every unit's row, in :meth:`SweepSettings.units` order; finished units are reused (``on_done``'s
    third argument says so), the rest run ``settings.workers`` at a time."""
    units = settings.units()
    rows: dict[str, dict[str, Any]] = {}
    for unit in units:
        if (row := load_finished(out, unit, settings)) is not None:
            rows[unit.name] = row
            if on_done is not None:
                on_done(unit, row, True)
    todo = [unit for unit in units if unit.name not in rows]
    for unit, row in _run_all(settings, todo, out):
        rows[unit.name] = row
        if on_done is not None:
            on_done(unit, row, False)
    return [rows[unit.name] for unit in units]


def _run_all(settings: SweepSettings, todo: list[Unit], out: Path) -> Iterable[tuple[Unit, dict[str, Any]]]:
    if settings.workers <= 1 or len(todo) <= 1:
        for unit in todo:
            yield unit, _run_and_save(settings, unit, out)
        return
    context = mp.get_context("spawn")  # a clean interpreter per worker: no inherited torch thread pools
    with ProcessPoolExecutor(max_workers=settings.workers, mp_context=context) as pool:
        pending: dict[Future[dict[str, Any]], Unit] = {
            pool.submit(_run_and_save, settings, unit, out): unit for unit in todo}
        while pending:
            finished, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in finished:
                unit = pending.pop(future)
                yield unit, future.result()  # a failure in a worker surfaces here
