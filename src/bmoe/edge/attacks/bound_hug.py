"""Bound-hugging: results and updates moved by just under the tolerance bound, in the most damaging direction.

The attacker knows the bounds (the genesis records them) and spends ``margin`` of each:

- **results** (n_e, C): every row y moves by δ with ‖δ‖₂ = margin x ``result_bound`` x max(‖y‖₂, floor),
  the budget of the per-sample metric, along the steepest ascent of the log-probability of the
  ``target`` class, e_t - softmax(y) (the gradient of log softmax(y)_t with respect to y: the best
  L2 step toward t). ``target`` -1 (the default) is untargeted: the edge does not see labels, so it
  pushes each row away from its own predicted class, along softmax(y) - e_argmax(y).
- **updates**: every element moves by margin x ``update_bound`` against the honest SGD step,
  w_new - margin x u x sign(w_new - w_old). Plain SGD makes w_new - w_old = -lr x g, so this is
  u x sign(g), the steepest ascent of the loss in the element-wise (L∞) ball that bounds updates
  (the fast-gradient-sign step, Goodfellow et al. 2015); elements the step left unchanged stay.

The manipulation is a deterministic function of the edge's honest answer, so attackers on the same
numeric profile publish identical bytes (colluding or not). With ``margin`` < 1 and honest
divergence far below the bound, the answer stays within the bound of the honest ones and joins
their group; ``margin`` > 1 is the same attack outside it.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch

from bmoe.edge.behaviour import Attack, AttackContext, Weights, register
from bmoe.verify.comparison import DEFAULT_RESULT_BOUND, DEFAULT_UPDATE_BOUND, NORM_FLOOR

UNTARGETED = -1


@register
class BoundHug(Attack):
    name: ClassVar[str] = "bound_hug"
    defaults: ClassVar[dict[str, float]] = {"result_bound": DEFAULT_RESULT_BOUND,
                                             "update_bound": DEFAULT_UPDATE_BOUND,
                                             "margin": 0.9,  # 10 % of the bound left for honest divergence
                                             "target": float(UNTARGETED)}
    ranges: ClassVar[dict[str, tuple[float, float]]] = {"result_bound": (0.0, 1e6), "update_bound": (0.0, 1e6),
                                                        "margin": (0.0, 1e6), "target": (UNTARGETED, 1e6)}

    def __init__(self, probability: float = 0.2, **params: Any) -> None:
        super().__init__(probability, **params)
        if not self.params["target"].is_integer():
            raise ValueError(f"attack {self.name!r}: target must be a class index or -1, "
                             f"got {self.params['target']!r}")

    def tamper_output(self, ctx: AttackContext, output: torch.Tensor) -> torch.Tensor | None:
        if not self.strikes(ctx):
            return None
        budget = self.params["margin"] * self.params["result_bound"]
        return push_rows(output, budget, int(self.params["target"])).to(output.dtype)

    def tamper_update(self, ctx: AttackContext, base: Weights, updated: Weights) -> Weights | None:
        if not self.strikes(ctx):
            return None
        step = self.params["margin"] * self.params["update_bound"]
        return {name: against_step(base[name], updated[name], step) for name in sorted(updated)}


def push_rows(output: torch.Tensor, budget: float, target: int, floor: float = NORM_FLOOR) -> torch.Tensor:
    """``output`` (n, C) with each row moved by budget x max(‖row‖₂, floor) toward ``target`` (-1: away
    from the row's own predicted class), in float64."""
    y = output.double()  # (n, C)
    if y.numel() == 0:
        return y
    if target >= y.shape[1]:
        raise ValueError(f"attack 'bound_hug': target {target} is not one of the {y.shape[1]} classes")
    probs = y.softmax(dim=1)  # (n, C)
    if target == UNTARGETED:
        direction = probs - torch.nn.functional.one_hot(y.argmax(dim=1), y.shape[1]).double()  # (n, C)
    else:
        direction = torch.nn.functional.one_hot(torch.full((y.shape[0],), target), y.shape[1]).double() - probs
    length = direction.norm(dim=1, keepdim=True)  # (n, 1); 0 only where softmax is exactly one-hot
    unit = torch.where(length > 0, direction / length.clamp(min=1e-300), torch.zeros_like(direction))
    scale = y.norm(dim=1, keepdim=True).clamp(min=floor)  # (n, 1)
    return y + budget * scale * unit


def against_step(old: torch.Tensor, new: torch.Tensor, step: float) -> torch.Tensor:
    """``new`` moved by ``step`` per element against the step old -> new (computed in float64)."""
    moved = new.double() - step * torch.sign(new.double() - old.double())
    return moved.to(new.dtype)
