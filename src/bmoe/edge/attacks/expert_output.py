"""Attacks on the expert calls of a language model's decoding: what a lying edge answers instead of an expert's
honest output rows (issue 25's localisation benchmark).

One call is an expert's rows ``inputs`` (n, d) and their honest ``outputs`` (n, d); an attack returns the rows the
edge answers (n, d), a new tensor where it lies, its arguments untouched. The kinds (:data:`OUTPUT_ATTACKS`),
each a model of an edge's reason to lie:

- ``noise``: additive Gaussian noise, ``scale`` times each row's RMS (a subtle perturbation; 1e-3 by default);
- ``int8``, ``int4``: a cheaper expert: the call recomputed with the expert's weight matrices fake-quantised
  (symmetric, per output channel, round to nearest, dequantised to float32);
- ``swap``: the output of another expert of the same layer, (expert + 1) mod E, on the same rows;
- ``zero``: a lazy edge answering zeros; ``identity``: a lazy edge answering its inputs;
- ``stale``: a replay: each struck row answered with the last output row this attacker computed for the same
  (layer, expert) in an earlier call; on a (layer, expert)'s first call it has nothing to replay and answers
  honestly (no strike).

Which calls are struck: each call draws one uniform from the attack's own seeded generator (struck below
``probability``) and, with ``rows="one"``, one row index (the localisation benchmark's single lying token); the
draws do not depend on the kind, so one seed strikes the same calls whatever the lie. Each strike is recorded
(:class:`Strike`) with the rows it altered, the benchmark's ground truth; a struck row whose lie has the honest
bits (a zero row zeroed) is not an alteration and is not recorded. :class:`AttackedExperts` puts an attack behind
an honest expert caller, so the decoding engine generates with a liar.

Must not know: the protocol, edges, the ledger, the network; which caller computed the honest outputs.
"""

from __future__ import annotations

import copy
import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import torch
from torch import nn

from bmoe.lm.decoding.expert_calls import ExpertCaller
from bmoe.lm.decoding.rows import stable_expert
from bmoe.lm.model import MoETransformer

OUTPUT_ATTACKS = ("noise", "int8", "int4", "swap", "zero", "identity", "stale")
ROW_CHOICES = ("all", "one")  # every row of a struck call, or one row of it drawn by the attack's generator
NOISE_SCALE = 1e-3  # noise's standard deviation relative to each row's RMS: subtle, far above float32's rounding

ExpertLookup = Callable[[int, int], nn.Module]  # (layer, expert) -> the expert module


@dataclass(frozen=True)
class Strike:
    """One lie: the call ``call_index`` (counted per (layer, expert) from 0, among the calls the attack saw) of
    ``expert`` of ``layer``, and the indices of the rows whose answer it altered."""

    layer: int
    expert: int
    call_index: int
    rows: tuple[int, ...]


class ExpertOutputAttack(Protocol):
    """An attacker's answer to one expert call: ``inputs`` (n, d) and the honest ``outputs`` (n, d) in, the rows
    it answers (n, d) out; its strikes kept in ``strikes``."""

    name: str
    strikes: list[Strike]

    def __call__(self, layer: int, expert: int, inputs: torch.Tensor, outputs: torch.Tensor) -> torch.Tensor: ...


class OutputAttack:
    """Strikes calls with ``probability`` (and one row of each with ``rows="one"``) and records the strikes; a
    kind overrides :meth:`falsify` (and :meth:`observe` if it keeps what it saw)."""

    name = "attack"  # each kind names itself

    def __init__(self, seed: int, probability: float = 1.0, rows: str = "all") -> None:
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise ValueError(f"seed must be an integer, got {seed!r}")
        if isinstance(probability, bool) or not isinstance(probability, int | float) or not 0 <= probability <= 1:
            raise ValueError(f"probability must be a number in [0, 1], got {probability!r}")
        if rows not in ROW_CHOICES:
            raise ValueError(f"rows must be one of {', '.join(ROW_CHOICES)}, got {rows!r}")
        self.probability, self.rows = float(probability), rows
        self.strikes: list[Strike] = []
        self._draws = torch.Generator().manual_seed(seed)
        self._calls: Counter[tuple[int, int]] = Counter()  # (layer, expert) -> calls seen

    def falsify(self, layer: int, expert: int, inputs: torch.Tensor, outputs: torch.Tensor) -> torch.Tensor | None:
        """The lie for the struck rows ``inputs`` (k, d) whose honest outputs are ``outputs`` (k, d): (k, d), or
        None to answer honestly."""
        raise NotImplementedError

    def observe(self, layer: int, expert: int, inputs: torch.Tensor, outputs: torch.Tensor) -> None:
        """Sees every call's rows and honest outputs, after answering it."""

    def __call__(self, layer: int, expert: int, inputs: torch.Tensor, outputs: torch.Tensor) -> torch.Tensor:
        if inputs.dim() != 2 or inputs.shape != outputs.shape:
            raise ValueError(f"an expert call's inputs and outputs must both be (n, d), got {tuple(inputs.shape)} "
                             f"and {tuple(outputs.shape)}")
        call_index = self._calls[(layer, expert)]
        self._calls[(layer, expert)] += 1
        chosen = self._chosen_rows(outputs.shape[0])
        answer = outputs
        if chosen:
            index = torch.tensor(chosen)
            with torch.no_grad():
                lies = self.falsify(layer, expert, inputs[index], outputs[index])  # (k, d)
            if lies is not None:
                altered = (lies.to(outputs.dtype) != outputs[index]).any(dim=1).tolist()  # (k,)
                rows = tuple(row for row, changed in zip(chosen, altered, strict=True) if changed)
                if rows:
                    answer = outputs.clone()
                    answer[index] = lies.to(outputs.dtype)
                    self.strikes.append(Strike(layer, expert, call_index, rows))
        self.observe(layer, expert, inputs, outputs)
        return answer

    def _chosen_rows(self, n: int) -> tuple[int, ...]:
        """This call's draws: the rows to strike (none when the call is spared)."""
        struck = float(torch.rand((), generator=self._draws)) < self.probability
        if self.rows == "one":
            row = int(torch.randint(max(n, 1), (), generator=self._draws))
            return (row,) if struck and n else ()
        return tuple(range(n)) if struck else ()


class AdditiveNoise(OutputAttack):
    name = "noise"

    def __init__(self, seed: int, probability: float, rows: str, scale: float) -> None:
        super().__init__(seed, probability, rows)
        self.scale = scale
        self._noise = torch.Generator().manual_seed(seed)  # apart from the strike draws: kinds strike alike

    def falsify(self, layer: int, expert: int, inputs: torch.Tensor, outputs: torch.Tensor) -> torch.Tensor:
        rms = outputs.float().pow(2).mean(dim=1, keepdim=True).sqrt()  # (k, 1)
        return outputs + self.scale * rms * torch.randn(outputs.shape, generator=self._noise)


class QuantisedExpert(OutputAttack):
    """The call recomputed by a copy of the expert with its weight matrices fake-quantised to ``bits`` (made on
    the expert's first strike, from the weights it has then)."""

    def __init__(self, seed: int, probability: float, rows: str, experts: ExpertLookup, bits: int) -> None:
        super().__init__(seed, probability, rows)
        self.name, self.bits, self._experts = f"int{bits}", bits, experts
        self._quantised: dict[tuple[int, int], nn.Module] = {}

    def falsify(self, layer: int, expert: int, inputs: torch.Tensor, outputs: torch.Tensor) -> torch.Tensor:
        key = (layer, expert)
        if key not in self._quantised:
            self._quantised[key] = quantised_copy(self._experts(layer, expert), self.bits)
        return stable_expert(self._quantised[key], inputs)


class SwappedExpert(OutputAttack):
    name = "swap"

    def __init__(self, seed: int, probability: float, rows: str, experts: ExpertLookup, num_experts: int) -> None:
        super().__init__(seed, probability, rows)
        self._experts, self.num_experts = experts, num_experts

    def falsify(self, layer: int, expert: int, inputs: torch.Tensor, outputs: torch.Tensor) -> torch.Tensor:
        return stable_expert(self._experts(layer, (expert + 1) % self.num_experts), inputs)


class ZeroOutput(OutputAttack):
    name = "zero"

    def falsify(self, layer: int, expert: int, inputs: torch.Tensor, outputs: torch.Tensor) -> torch.Tensor:
        return torch.zeros_like(outputs)


class IdentityOutput(OutputAttack):
    name = "identity"

    def falsify(self, layer: int, expert: int, inputs: torch.Tensor, outputs: torch.Tensor) -> torch.Tensor:
        return inputs


class StaleReplay(OutputAttack):
    name = "stale"

    def __init__(self, seed: int, probability: float, rows: str) -> None:
        super().__init__(seed, probability, rows)
        self._last: dict[tuple[int, int], torch.Tensor] = {}  # (layer, expert) -> the last honest row seen (d,)

    def falsify(self, layer: int, expert: int, inputs: torch.Tensor, outputs: torch.Tensor) -> torch.Tensor | None:
        last = self._last.get((layer, expert))
        return None if last is None else last.expand_as(outputs)

    def observe(self, layer: int, expert: int, inputs: torch.Tensor, outputs: torch.Tensor) -> None:
        if outputs.shape[0]:
            self._last[(layer, expert)] = outputs[-1].clone()


def fake_quantise(weight: torch.Tensor, bits: int) -> torch.Tensor:
    """``weight`` (o, i) rounded to ``bits``-bit integers, symmetric per output channel (row): each row's scale
    is its largest magnitude over 2^(bits-1) - 1, and the integers are dequantised back to float32."""
    levels = 2 ** (bits - 1) - 1
    scale = weight.float().abs().amax(dim=1, keepdim=True) / levels  # (o, 1)
    scale = torch.where(scale > 0, scale, torch.ones_like(scale))  # an all-zero row stays zero
    return (weight.float() / scale).round().clamp(-levels, levels) * scale


def quantised_copy(expert: nn.Module, bits: int) -> nn.Module:
    """A copy of ``expert`` whose weight matrices (its 2-D parameters: a SwiGLU expert's w1, w2, w3) are
    fake-quantised to ``bits``; ``expert`` is untouched."""
    copied = copy.deepcopy(expert)
    with torch.no_grad():
        for parameter in copied.parameters():
            if parameter.dim() == 2:
                parameter.copy_(fake_quantise(parameter, bits).to(parameter.dtype))
    return copied


PLAIN_ATTACKS: dict[str, type[OutputAttack]] = {"zero": ZeroOutput, "identity": IdentityOutput, "stale": StaleReplay}


def model_experts(model: MoETransformer) -> ExpertLookup:
    """The lookup (layer, expert) -> ``model``'s expert module."""
    def expert_of(layer: int, expert: int) -> nn.Module:
        return model.layers[layer].block_sparse_moe.experts[expert]
    return expert_of


def make_output_attack(kind: str, experts: MoETransformer | ExpertLookup, *, seed: int, probability: float = 1.0,
                       rows: str = "all", scale: float = NOISE_SCALE,
                       num_experts: int | None = None) -> ExpertOutputAttack:
    """The attack ``kind`` (:data:`OUTPUT_ATTACKS`) on the experts of ``experts`` (a model, or a lookup
    (layer, expert) -> module; ``swap`` with a lookup needs ``num_experts``, the experts per layer); ``scale``
    is ``noise``'s relative standard deviation. A bad argument is refused by a ValueError naming it."""
    if kind not in OUTPUT_ATTACKS:
        raise ValueError(f"unknown expert-output attack {kind!r}; the kinds are {', '.join(OUTPUT_ATTACKS)}")
    if isinstance(experts, MoETransformer):
        lookup, num_experts = model_experts(experts), experts.config.num_local_experts
    elif callable(experts):
        lookup = experts
    else:
        raise ValueError(f"experts must be an MoETransformer or a (layer, expert) -> module lookup, got {experts!r}")
    if kind == "noise":
        if isinstance(scale, bool) or not isinstance(scale, int | float) or not (math.isfinite(scale) and scale > 0):
            raise ValueError(f"scale must be a finite number > 0, got {scale!r}")
        return AdditiveNoise(seed, probability, rows, float(scale))
    if kind in ("int8", "int4"):
        return QuantisedExpert(seed, probability, rows, lookup, int(kind[3:]))
    if kind == "swap":
        if isinstance(num_experts, bool) or not isinstance(num_experts, int) or num_experts < 2:
            raise ValueError(f"swap needs num_experts, the experts per layer (an integer >= 2), got {num_experts!r}")
        return SwappedExpert(seed, probability, rows, lookup, num_experts)
    return PLAIN_ATTACKS[kind](seed, probability, rows)


class AttackedExperts:
    """An expert caller that lies: ``honest``'s answer to each call, every expert's rows passed through
    ``attack`` (in the order of the experts' ids, so the attack's draws do not depend on the answer's order)."""

    def __init__(self, honest: ExpertCaller, attack: ExpertOutputAttack) -> None:
        self.honest, self.attack = honest, attack

    def __call__(self, layer: int, routed: dict[int, torch.Tensor]) -> dict[int, torch.Tensor]:
        answers = self.honest(layer, routed)
        return {expert: self.attack(layer, expert, routed[expert], answers[expert]) for expert in sorted(answers)}
