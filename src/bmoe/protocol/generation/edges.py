"""The edges of verified generation: each serves expert calls of a language model's layers, statelessly (its
experts' weights and nothing of any sequence), and signs what it answered when a chunk is committed.

An edge may lie: its ``attack`` (an ``edge.attacks.expert_output`` attack, or any callable of the same shape)
rewrites the honest outputs of a call. An edge may be gone (``kill``): every call then raises :class:`EdgeGone`,
as a dead process's connection does.

Must not know: the ledger's rules, the chunk's decision, the engine.
"""

from __future__ import annotations

from typing import Protocol

import torch

from bmoe.ledger.generation import call_message
from bmoe.ledger.keys import Identity
from bmoe.lm.decoding.expert_calls import ExpertCaller


class EdgeGone(RuntimeError):
    """An edge did not answer: it is gone (killed, disconnected)."""

    def __init__(self, address: str, message: str | None = None) -> None:
        super().__init__(message or f"edge {address[:12]} did not answer: it is gone")
        self.address = address


class OutputAttack(Protocol):
    """Rewrites one call's honest outputs (n, d) given its inputs (n, d): what a lying edge answers."""

    def __call__(self, layer: int, expert: int, inputs: torch.Tensor, outputs: torch.Tensor) -> torch.Tensor: ...


class GenerationEdge:
    """One edge: ``experts`` computes its calls (the model's experts, ``lm.decoding.expert_calls.ModelExperts``),
    ``identity`` signs its commitments, ``attack`` (None: honest) rewrites what it answers."""

    def __init__(self, identity: Identity, experts: ExpertCaller, attack: OutputAttack | None = None) -> None:
        self.identity = identity
        self.experts = experts
        self.attack = attack
        self.alive = True
        self.rows_computed = 0  # expert rows this edge computed (the fleet's extra compute is counted from these)

    @property
    def address(self) -> str:
        return self.identity.address

    def kill(self) -> None:
        """The edge goes away: it answers nothing from now on."""
        self.alive = False

    def compute(self, layer: int, routed: dict[int, torch.Tensor]) -> dict[int, torch.Tensor]:
        """One layer's calls: expert -> its rows (n_e, d) in, expert -> outputs (n_e, d) out."""
        if not self.alive:
            raise EdgeGone(self.address)
        outputs = self.experts(layer, routed)
        self.rows_computed += sum(int(rows.shape[0]) for rows in routed.values())
        if self.attack is not None:
            outputs = {expert: self.attack(layer, expert, routed[expert], out) for expert, out in outputs.items()}
        return outputs

    def commit(self, generation: str, chunk: int, slot: int, inputs: str, outputs: str) -> str:
        """The edge's signature committing to ``outputs`` (a CID) for the call of ``slot`` on ``inputs`` (the
        inputs' SHA-256); :class:`EdgeGone` if it is gone."""
        if not self.alive:
            raise EdgeGone(self.address)
        return self.identity.sign(call_message(generation, chunk, slot, inputs, outputs))
