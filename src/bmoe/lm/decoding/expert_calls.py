"""The expert calls of decoding: the interface they go through, the in-process caller, and their log.

A step of the engine calls the experts once per layer, for the whole batch: ``caller(layer, routed)`` with, for
each expert the layer's router chose, the hidden rows (n_e, d) routed to it, and gets each expert's output rows
(n_e, d) back. Where the experts run (this process, edges through the B-MoE protocol) is the caller's business;
an expert missing from the answer drops out of its rows' mixtures (``moe.dispatch.combine`` renormalises), as a
rejected result does in training.

:class:`CallLog` keeps every row that went through a caller, per (layer, expert), with the sequence and the
position of the token it belongs to and the position of the token its step generated: a chunk's calls can be
committed and re-computed in one batched call per (layer, expert) (:func:`recompute`), and a wrong row says how
far its sequence must roll back (to the token its step generated; nothing before it used the row).
:class:`RecordedExperts` answers from recorded calls without running an expert (a replay).

Must not know: the ledger, edges, the network, sampling.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Protocol

import torch

from bmoe.lm.decoding.rows import stable_expert
from bmoe.lm.model import MoETransformer


class ExpertCaller(Protocol):
    """Computes one layer's expert calls: expert -> its rows (n_e, d) in; expert -> outputs (n_e, d) out."""

    def __call__(self, layer: int, routed: dict[int, torch.Tensor]) -> dict[int, torch.Tensor]: ...


class ModelExperts:
    """The in-process caller: the model's own experts, each call on padded rows (``rows.py``)."""

    def __init__(self, model: MoETransformer) -> None:
        self.model = model

    def __call__(self, layer: int, routed: dict[int, torch.Tensor]) -> dict[int, torch.Tensor]:
        experts = self.model.layers[layer].block_sparse_moe.experts
        with torch.no_grad():
            return {expert: stable_expert(experts[expert], rows) for expert, rows in routed.items()}


@dataclass(frozen=True)
class CallRows:
    """The rows one (layer, expert) computed, in the order they were computed."""

    sequences: torch.Tensor  # (n,) int64: the engine's sequence id of each row
    positions: torch.Tensor  # (n,) int64: the position in its sequence of the token the row belongs to
    produced: torch.Tensor  # (n,) int64: the position of the token the row's step generated (the rollback point)
    inputs: torch.Tensor  # (n, d)
    outputs: torch.Tensor  # (n, d)


class CallLog:
    """Every expert row computed since the last :meth:`take`, per (layer, expert)."""

    def __init__(self) -> None:
        self._parts: dict[tuple[int, int], list[CallRows]] = defaultdict(list)

    def record(self, layer: int, expert: int, rows: CallRows) -> None:
        self._parts[(layer, expert)].append(rows)

    def called_experts(self) -> list[tuple[int, int]]:
        """The (layer, expert) pairs with rows, in order."""
        return sorted(key for key, parts in self._parts.items() if parts)

    def rows(self, layer: int, expert: int) -> CallRows:
        """All rows of (``layer``, ``expert``), concatenated."""
        parts = self._parts[(layer, expert)]
        if not parts:
            raise KeyError(f"no calls of expert {expert} of layer {layer} in the log")
        return CallRows(*(torch.cat([getattr(part, name) for part in parts])
                          for name in ("sequences", "positions", "produced", "inputs", "outputs")))

    def row_count(self) -> int:
        return sum(int(part.sequences.numel()) for parts in self._parts.values() for part in parts)

    def discard(self, sequence: int, produced_from: int) -> None:
        """Forget the rows of ``sequence`` whose step generated the token at ``produced_from`` or later (a
        rollback discards what they computed)."""
        for key, parts in self._parts.items():
            kept = []
            for part in parts:
                keep = (part.sequences != sequence) | (part.produced < produced_from)  # (n,)
                if bool(keep.all()):
                    kept.append(part)
                elif bool(keep.any()):
                    kept.append(CallRows(part.sequences[keep], part.positions[keep], part.produced[keep],
                                         part.inputs[keep], part.outputs[keep]))
            self._parts[key] = kept

    def take(self) -> dict[tuple[int, int], CallRows]:
        """Every (layer, expert)'s rows (a chunk to commit), and an empty log after."""
        taken = {key: self.rows(*key) for key in self.called_experts()}
        self._parts.clear()
        return taken


class RecordedExperts:
    """A caller that answers from recorded calls, running no expert: each input row gets the output recorded for
    the same (layer, expert, input bytes). Decoding is bit-exact, so a generation replayed from its calls asks
    exactly the recorded rows (a replay that reuses accepted outputs); a row never recorded is refused."""

    def __init__(self, calls: dict[tuple[int, int], CallRows]) -> None:
        self._outputs: dict[tuple[int, int, bytes], torch.Tensor] = {}
        for (layer, expert), rows in calls.items():
            for row, out in zip(rows.inputs, rows.outputs, strict=True):
                self._outputs[(layer, expert, _row_bytes(row))] = out

    def __call__(self, layer: int, routed: dict[int, torch.Tensor]) -> dict[int, torch.Tensor]:
        answers = {}
        for expert, rows in routed.items():
            keys = [(layer, expert, _row_bytes(row)) for row in rows]
            missing = sum(key not in self._outputs for key in keys)
            if missing:
                raise KeyError(f"{missing} of the {len(keys)} rows sent to expert {expert} of layer {layer} "
                               "were never recorded")
            answers[expert] = torch.stack([self._outputs[key] for key in keys])  # (n_e, d)
        return answers


def _row_bytes(row: torch.Tensor) -> bytes:
    return row.detach().cpu().contiguous().numpy().tobytes()


def recompute(calls: dict[tuple[int, int], CallRows], caller: ExpertCaller) -> dict[tuple[int, int], torch.Tensor]:
    """Each (layer, expert)'s recorded inputs through ``caller`` again, in one call per layer carrying one
    batched call per expert: (layer, expert) -> outputs (n, d), to compare with the recorded ones."""
    layers = sorted({layer for layer, _ in calls})
    outputs = {}
    for layer in layers:
        routed = {expert: rows.inputs for (at, expert), rows in calls.items() if at == layer}
        outputs.update({(layer, expert): out for expert, out in caller(layer, routed).items()})
    return outputs
