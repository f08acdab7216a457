"""What a re-executing validator on other hardware accepts under the ``tolerance`` comparison.

A replica recomputes the gate, the aggregation, the loss and the gate update on its own numerics
(a :class:`~bmoe.edge.profiles.NumericProfile`), so its bytes may differ from the proposer's in the
last bits, and a near-tie between the K-th and (K+1)-th expert may even flip. Under ``exact`` that
splits the validators. Under ``tolerance`` the recorded values are *decisions every replica checks
within the bound*, and the chain continues from the recorded objects, never from a replica's own:

- **activation**: each sample's recorded experts must be a top-K of the replica's gate logits within
  the bound (each recorded expert's logit at least the replica's K-th largest minus
  ``result_bound × max(‖logits‖, floor)``), and the recorded weights within the per-sample bound of
  the softmax of the replica's logits at those experts. The recorded experts then route the round;
- **aggregated output, gradients**: within the per-sample result bound of the replica's;
- **loss**: within ``result_bound`` relative (floored) of the replica's;
- **new gate weights**: element-wise within ``update_bound`` of the replica's.

Must not know the ledger's transactions: it compares tensors and returns a reason or None.
"""

from __future__ import annotations

import torch

from bmoe.protocol.grouping import Weights, distance
from bmoe.verify.comparison import Tolerance


def activation_error(experts: torch.Tensor, weights: torch.Tensor, logits: torch.Tensor,
                     comparison: Tolerance) -> str | None:
    """Why the recorded top-K ``experts`` (B, K) and ``weights`` (B, K) are not the replica's gate
    ``logits`` (B, N) within the bound, or None."""
    if experts.shape != weights.shape or experts.shape[0] != logits.shape[0] or experts.shape[1] > logits.shape[1]:
        return f"the recorded activation's shape {tuple(experts.shape)} does not fit the gate's {tuple(logits.shape)}"
    if bool(((experts < 0) | (experts >= logits.shape[1])).any()):
        return "the recorded activation names an expert that does not exist"
    ordered = experts.sort(dim=1).values  # (B, K)
    if bool((ordered[:, 1:] == ordered[:, :-1]).any()):
        return "the recorded activation names one expert twice for a sample"
    scores = logits.double()  # (B, N)
    slack = comparison.result_bound * scores.norm(dim=1).clamp(min=comparison.norm_floor)  # (B,)
    kth = scores.topk(experts.shape[1], dim=1).values[:, -1]  # (B,)
    chosen = scores.gather(1, experts.long())  # (B, K)
    below = (chosen < (kth - slack)[:, None]).any(dim=1)  # (B,)
    if bool(below.any()):
        sample = int(below.nonzero()[0])
        return (f"sample {sample}: the recorded experts {experts[sample].tolist()} are not a top-{experts.shape[1]} "
                "of the re-executed gate within the bound")
    expected = torch.softmax(chosen, dim=1).float()  # (B, K)
    far = distance({"output": weights}, {"output": expected}, "result", comparison)
    if far > comparison.result_bound:
        return f"the recorded routing weights are {far:.3g} from the re-executed gate's, beyond the bound"
    return None


def result_error(what: str, recorded: torch.Tensor, recomputed: torch.Tensor, comparison: Tolerance) -> str | None:
    """Why a recorded (S, C) tensor is not the replica's within the per-sample bound, or None."""
    if recorded.shape != recomputed.shape:
        return f"{what}: shape {tuple(recorded.shape)} recorded, {tuple(recomputed.shape)} re-executed"
    far = distance({"output": recorded}, {"output": recomputed}, "result", comparison)
    return None if far <= comparison.result_bound else _beyond(what, far)


def loss_error(recorded: float, recomputed: float, comparison: Tolerance) -> str | None:
    gap = abs(recorded - recomputed) / max(abs(recomputed), comparison.norm_floor)
    return None if gap <= comparison.result_bound else f"loss {recorded} is {gap:.3g} from the re-executed {recomputed}"


def weights_error(what: str, recorded: Weights, recomputed: Weights, comparison: Tolerance) -> str | None:
    if set(recorded) != set(recomputed) or any(recorded[n].shape != recomputed[n].shape for n in recorded):
        return f"{what}: not the re-executed tensors' names and shapes"
    far = distance(recorded, {n: t.to(recorded[n].dtype) for n, t in recomputed.items()}, "update", comparison)
    return None if far <= comparison.update_bound else _beyond(what, far)


def _beyond(what: str, far: float) -> str:
    return f"{what} is {far:.3g} from the re-executed value, beyond the bound"
