"""What the round asks of the comparison in force about tensors: the ``Comparison`` seam's protocol side.

``verify/comparison.py`` declares a comparison (its key, its parameters, whether it records groups) and
must not know tensors; this module declares what the validators and re-executing replicas ask of it on
tensors and stored objects, one :class:`TensorChecks` per comparison (``exact.py``, ``tolerance.py``,
registered by name in ``__init__.py``). Callers take ``tensor_checks(comparison)`` and call its methods;
they never ask which comparison is in force.

- a replica's checks of what a block recorded against what it recomputed (the activation, the MoE output,
  the loss, the gate and the gradients), each raising :class:`Differs` naming the first difference;
- under a comparison that records groups, grouping one expert's answers from their bytes and the value
  the first group accepts.

Must not know the ledger's transactions or how blocks are replayed: it sees tensors, payload fields and
the store.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any

import torch

from bmoe.moe.gate import Routing
from bmoe.protocol.comparisons.grouping import Answer, Expected, Group, Grouping
from bmoe.protocol.gate_step import Activation, GateUpdate
from bmoe.storage import BlobStore
from bmoe.verify.comparison import Comparison


class Differs(Exception):
    """A recomputed value differs from the block's."""


class TensorChecks(ABC):
    """The tensor checks of one comparison (``comparison``, its parameters)."""

    comparison: Comparison

    @abstractmethod
    def check_activation(self, store: BlobStore, activation_cid: str, replica: Activation,
                         num_experts: int) -> tuple[Routing, dict[int, torch.Tensor]]:
        """The routing of the round (and each expert's samples) once the recorded activation under
        ``activation_cid`` checks against the ``replica``'s own; Differs when it does not."""

    @abstractmethod
    def check_output(self, store: BlobStore, output_cid: str, logits: torch.Tensor) -> None:
        """Differs when the recorded MoE output is not the replica's aggregated ``logits`` (B, C)."""

    @abstractmethod
    def check_gate_update(self, store: BlobStore, update: GateUpdate, payload: Mapping[str, Any]) -> None:
        """Differs when a gate update's recorded loss, gate or gradients are not the replica's ``update``."""

    def group(self, answers: list[Answer], expected: Expected) -> Grouping:
        """One expert's answers grouped from their bytes; asked only when ``comparison.records_groups``
        (otherwise the ledger groups the committed digests)."""
        raise NotImplementedError(f"comparison {self.comparison.name} groups answers by their digests")

    def accepted(self, grouping: Grouping, group: Group, edge_digests: Mapping[str, str], phase: str) -> bytes:
        """The value ``group`` accepts, encoded; asked only when ``comparison.records_groups``."""
        raise NotImplementedError(f"comparison {self.comparison.name} accepts a committed object as it is")


def require_same(name: str, recomputed: object, claimed: object) -> None:
    """Differs, naming both values, when ``recomputed`` is not ``claimed``."""
    if recomputed != claimed:
        raise Differs(f"{name} differs from the re-executed value ({_short(claimed)} claimed, "
                      f"{_short(recomputed)} recomputed)")


def require_within(reason: str | None) -> None:
    """Differs with ``reason`` unless it is None."""
    if reason is not None:
        raise Differs(reason)


def _short(value: object) -> str:
    text = str(value)
    return text if len(text) <= 40 else text[:37] + "..."
