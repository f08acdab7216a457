"""Owns one profile's computation of a probe: every weight set's forward output and SGD update,
computed through the edge's own :class:`~bmoe.edge.runtime.ExpertRuntime` (what an edge runs).

A :class:`Probe` is what every profile computes on: the expert spec, the weight sets, the samples,
one output gradient per weight set and the learning rate. It round-trips through a file so an edge
process started with a profile's environment (``worker``) computes the same probe.

Must not know: how divergence is measured or which bound is recommended.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from bmoe.edge.profiles import NumericProfile
from bmoe.edge.runtime import ExpertRuntime, TaskInputs, Weights, weights_cid
from bmoe.moe.experts import ExpertSpec
from bmoe.storage import MemoryStore, deserialize_tensors


@dataclass(frozen=True)
class Probe:
    """The inputs every profile computes on."""

    spec: ExpertSpec
    names: tuple[str, ...]  # one per weight set, e.g. "expert3/trained"
    weights: tuple[Weights, ...]
    x: torch.Tensor  # (S, *input_shape) float32
    grads: tuple[torch.Tensor, ...]  # per weight set: d loss / d output, (S, C) float32
    lr: float

    def save(self, path: Path) -> None:
        torch.save({"spec": self.spec.to_dict(), "names": list(self.names), "weights": list(self.weights),
                    "x": self.x, "grads": list(self.grads), "lr": self.lr}, path)

    @staticmethod
    def load(path: Path) -> Probe:
        raw = torch.load(path, weights_only=True)
        spec = raw["spec"]
        return Probe(ExpertSpec(spec["preset"], tuple(spec["input_shape"]), spec["num_classes"], spec["hidden"]),
                     tuple(raw["names"]), tuple(raw["weights"]), raw["x"], tuple(raw["grads"]), float(raw["lr"]))


@dataclass(frozen=True)
class Computed:
    """One profile's results on a probe, one entry per weight set."""

    outputs: tuple[torch.Tensor, ...]  # (S, C) float32 each
    updates: tuple[torch.Tensor, ...]  # (P,) float32 each: the new weights, flattened in sorted key order

    def save(self, path: Path) -> None:
        torch.save({"outputs": list(self.outputs), "updates": list(self.updates)}, path)

    @staticmethod
    def load(path: Path) -> Computed:
        raw = torch.load(path, weights_only=True)
        return Computed(tuple(raw["outputs"]), tuple(raw["updates"]))


def flatten(weights: Weights) -> torch.Tensor:
    """All tensors of ``weights`` in sorted key order as one float32 vector (P,)."""
    return torch.cat([weights[key].detach().reshape(-1).to(torch.float32) for key in sorted(weights)])


def compute_probe(profile: NumericProfile, probe: Probe) -> Computed:
    """Every weight set's output and SGD update under ``profile``, as an edge computes them."""
    runtime = ExpertRuntime(MemoryStore(), probe.spec, profile=profile)
    rows = torch.arange(probe.x.shape[0])  # (S,) the routed samples, ascending
    task = TaskInputs("calibration", "probe-task", "probe-activation", probe.x, {0: rows})
    outputs: list[torch.Tensor] = []
    updates: list[torch.Tensor] = []
    for weights, grad in zip(probe.weights, probe.grads, strict=True):
        runtime.new_round()
        forward = runtime.forward(weights_cid(weights), weights, task, 0, train=True)
        outputs.append(forward.output.detach().clone())  # (S, C)
        encoded, _ = runtime.update(forward, "probe-grad", grad, probe.lr)
        new_weights, _ = deserialize_tensors(encoded.data)
        updates.append(flatten(new_weights))  # (P,)
    return Computed(tuple(outputs), tuple(updates))
