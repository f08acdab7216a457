"""How far honest edges on a mixed fleet drift apart on a language model, per layer (``bmoe lm calibrate``).

A short B-MoE run on the fleet, under a ``tolerance`` comparison wide enough that every honest answer joins one
group (so every answer is uploaded and none is recorded against), then every pair of answers to each expert call
is measured in the comparison's own metrics (``protocol/comparisons/grouping.distance``: per-row relative distance
for results, element-wise for updates), per layer, per direction (forward outputs, backward input gradients) and
phase. The largest honest distance of each phase, times a margin, is the bound to run with; the per-layer maxima
say whether one bound fits every layer.

Must not know: click.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path
from typing import Any

from bmoe.ledger.state import TaskState
from bmoe.moe.payloads import decode_result
from bmoe.protocol.comparisons.grouping import distance
from bmoe.protocol.lm.round import lm_task
from bmoe.run.lm.artifacts import chain_states
from bmoe.run.lm.config import LMRunConfig
from bmoe.run.lm.session import CHAIN_FILE, LMSession
from bmoe.run.lm.text import LMText
from bmoe.storage import BlobStore, deserialize_tensors
from bmoe.verify.comparison import Tolerance

WIDE = 1.0  # a bound every honest answer meets: the measuring run groups them all
MARGIN = 10.0  # the recommended bound: the largest honest distance times this


@dataclass
class Divergence:
    """The largest honest distance per (direction, layer, phase), and how many pairs were measured."""

    largest: dict[tuple[str, int, str], float] = field(default_factory=dict)
    pairs: int = 0

    def add(self, key: tuple[str, int, str], value: float) -> None:
        self.largest[key] = max(self.largest.get(key, 0.0), value)
        self.pairs += 1

    def phase_max(self, phase: str) -> float:
        return max((v for (_, _, p), v in self.largest.items() if p == phase), default=0.0)

    def rows(self) -> list[dict[str, Any]]:
        return [{"direction": "forward" if d == "f" else "backward", "layer": layer, "phase": phase, "largest": value}
                for (d, layer, phase), value in sorted(self.largest.items())]


def measure(config: LMRunConfig, text: LMText) -> Divergence:
    """Train ``config`` (its fleet, a wide tolerance) and measure every call's honest divergence."""
    wide = config.run.replace(comparison="tolerance", result_bound=WIDE, update_bound=WIDE)
    divergence = Divergence()
    comparison = Tolerance(result_bound=WIDE, update_bound=WIDE)
    with tempfile.TemporaryDirectory() as directory:
        session = LMSession(LMRunConfig(config.lm, wide), text.tokenizer.to_bytes(), text.tokenizer.vocab_size,
                            text.train_ids, text.validation_ids, Path(directory) / "run")
        session.train()
        session.close()
        for state in chain_states(Path(directory) / "run" / CHAIN_FILE):
            for task_id, task in state.tasks.items():  # a block per task
                _measure_task(divergence, session.store, comparison, task_id, task, session.model_config.hidden_size)
    return divergence


def _measure_task(divergence: Divergence, store: BlobStore, comparison: Tolerance, task_id: str, task: TaskState,
                  width: int) -> None:
    parsed = lm_task(task_id)
    assert parsed is not None, task_id  # the session's own tasks
    _, _, direction, layer = parsed
    for phase in ("result", "update"):
        for slot, committed in task.commitments[phase].items():
            rows = int(task.counts[slot]) if task.counts is not None else 0
            answers = _answers(store, committed, phase, rows, width)
            for a, b in combinations(answers, 2):
                divergence.add((direction, layer, phase), distance(a, b, phase, comparison))


def _answers(store: BlobStore, committed: Mapping[str, tuple[str, str]], phase: str, rows: int,
             width: int) -> list[dict[str, Any]]:
    """Each distinct answer's tensors (the store holds every answer under a grouping comparison)."""
    answers = []
    for _, cid in sorted({digest_cid for digest_cid in committed.values()}):
        data = store.get(cid)
        answers.append({"output": decode_result(data, rows, width)} if phase == "result"
                       else deserialize_tensors(data)[0])
    return answers


def recommended(divergence: Divergence) -> tuple[float, float]:
    """The bounds to run with: the largest honest distance of each phase times :data:`MARGIN` (at least 1e-9)."""
    return (max(divergence.phase_max("result") * MARGIN, 1e-9), max(divergence.phase_max("update") * MARGIN, 1e-9))


def one_bound_fits(divergence: Divergence, phase: str) -> bool:
    """Whether every layer's largest distance is within :data:`MARGIN` of the phase's largest (so one bound, set
    from the largest, is not loose by more than the margin squared for any layer)."""
    values = [v for (_, _, p), v in divergence.largest.items() if p == phase and v > 0]
    return not values or max(values) <= MARGIN * min(values)

