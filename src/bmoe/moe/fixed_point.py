"""Integer experts: a fixed-point MLP whose forward pass and SGD step are exact integer arithmetic.

Honest edges on different hardware (thread counts, BLAS kernels, float64 accumulation, batch splits,
GPUs) never agree bit for bit on float results, so exact digests accuse them (issue 10). This
module computes the ``mlp-int`` expert (input -> hidden ReLU -> classes, like ``mlp``) so that every
value is an integer computed exactly: any order of summation gives the same integers, and so the
same result bytes and the same updated weights on any hardware.

Formats (``Q.f`` is an integer ``v`` meaning ``v * 2**-f``; limits are saturated, never wrapped):

=====================  ======  ======================  ==================================
tensor                 format  range (saturated)       stored / travels as
=====================  ======  ======================  ==================================
weights and biases     Q.28    [-8, 8)                 int32 (same bytes as float32)
weights in a matmul    Q.16    |w| <= 8, 20 bits       the stored weights rounded (shift 12)
inputs x, hidden h     Q.12    [-256, 256), h >= 0     rounded half to even from float
layer sums             Q.28    < 2**49 (exact)         int64
outputs                Q.16    [-128, 128)             float32, ``y_q * 2**-16`` (exact)
output gradient        block   |g| <= 256, 24 bits     ``round(g * 2**s)``, s from max |g|
learning rate          Q.24    (2**-25, 1024)          ``round(lr * 2**24)``
=====================  ======  ======================  ==================================

Arithmetic. Matmuls run on the float64 BLAS as an exact integer engine (:func:`exact_matmul`):
integers below 2**53 are exact in float64, and when every partial sum of a dot product is below
2**53 no addition rounds, whatever the order, blocking, FMA or thread count. The reduction is split
into blocks whose sums provably stay below 2**53, and blocks are summed in int64. Measured on
Fashion-MNIST's shape this is ~4x float32 time; torch's int64 matmul is ~13x and the issue measured
~116x for a naive int64 fixed point, so exact float64 lanes are what keep training practical. A
slow reference (torch's int64 matmul) is kept equal by a differential test. Rescaling is a
round-to-nearest shift (ties toward +infinity), in int64.

Training is fixed-point SGD with float32-like resolution: the output gradient (float32, from the
validator) is block-quantised with one power-of-two scale taken from its largest entry (the scale
depends only on the gradient bytes, which every edge receives identically); the backward pass
reuses the forward's Q.16 weights (as quantisation-aware training does); each weight step
``lr * grad`` is rounded to Q.28 and the new weights saturate at [-8, 8).

Owns: the formats, quantisation, the exact matmul, the integer forward, backward and SGD step (pure
functions over a weights dict) and the ``nn.Module`` wrapping them. Must not know: profiles,
runtimes, the ledger, or how results are compared.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

Weights = dict[str, torch.Tensor]

W_FRAC = 28  # stored weights and biases, int32: resolution 3.7e-9, like float32's near |w| ~ 0.03
MATMUL_W_FRAC = 16  # weights as they enter a matmul (20 bits with sign)
ACT_FRAC = 12  # inputs and hidden activations
ACT_LIMIT = 2**20  # |a| < 2**20 in Q.12: 256
OUT_FRAC = 16  # outputs: |y_q| < 2**23, exactly representable in float32
OUT_LIMIT = 2**23
GRAD_BITS = 23  # the largest output-gradient entry becomes at most 2**23
GRAD_LIMIT = 256.0  # output-gradient entries saturate at +-256 before quantisation
STEP_BITS = 28  # a weight gradient keeps 28 significant bits before it meets the learning rate
LR_FRAC = 24
LR_MAX_Q = 2**34  # lr < 1024 (so that 28-bit gradient * learning rate < 2**62)
EXACT_BITS = 53  # float64 holds every integer below 2**53 exactly
INT32 = (-(2**31), 2**31 - 1)


def round_shift(v: torch.Tensor, shift: int) -> torch.Tensor:
    """``v * 2**-shift`` rounded to the nearest integer, ties toward +infinity (int64, |v| < 2**62).
    A negative ``shift`` multiplies, saturating at +-2**62."""
    if shift == 0:
        return v
    if shift < 0:
        grow = min(-shift, 62)
        limit = 2 ** (62 - grow)
        return v.clamp(-limit, limit) * (2**grow)
    if shift >= 63:
        return torch.zeros_like(v)  # |v| < 2**62 <= 2**(shift - 1): rounds to 0
    return (v + (1 << (shift - 1))) >> shift  # >> on int64 is an arithmetic (floor) shift


def bit_length(v: torch.Tensor) -> int:
    """Bits of the largest magnitude in ``v`` (0 for an empty or all-zero tensor)."""
    if not v.numel():
        return 0
    low, high = torch.aminmax(v)  # one pass, no |v| copy
    return max(-int(low), int(high)).bit_length()


def keep_bits(v: torch.Tensor, bits: int) -> tuple[torch.Tensor, int]:
    """``v`` rounded to at most ``bits`` significant bits (block scale): (rounded, shift it took)."""
    shift = max(0, bit_length(v) - bits)
    return round_shift(v, shift), shift


def quantize(x: torch.Tensor, frac: int, limit: float) -> torch.Tensor:
    """Float ``x`` as Q.frac int64: ``round(x * 2**frac)`` (half to even), saturated to ``[-limit, limit)``.
    Computed in float64, where scaling by a power of two is exact, so float32 and float64 copies of
    the same values give the same integers."""
    x = x.detach().to(torch.float64)
    if not bool(torch.isfinite(x).all()):
        raise ValueError("fixed point: cannot quantise NaN or inf")
    return torch.round(x * 2.0**frac).clamp(-limit, limit - 1).to(torch.int64)


def exact_matmul(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``a @ b`` for int64 ``a`` (m, k) and ``b`` (k, n), exact: float64 BLAS on blocks of the
    reduction small enough that no partial sum reaches 2**53, blocks summed in int64.
    OverflowError if the exact sum could reach 2**63."""
    k = a.shape[1]
    bits = bit_length(a) + bit_length(b)  # every product is below 2**bits
    if k == 0 or bits == 0:
        return torch.zeros(a.shape[0], b.shape[1], dtype=torch.int64, device=a.device)
    if bits + max(k - 1, 1).bit_length() > 63:
        raise OverflowError(f"fixed point: a sum of {k} products below 2**{bits} may exceed int64")
    if bits > EXACT_BITS - 1:
        raise OverflowError(f"fixed point: products below 2**{bits} are not exact in float64")
    block = 2 ** (EXACT_BITS - bits)  # block * 2**bits <= 2**53: every partial sum is exact
    af, bf = a.to(torch.float64), b.to(torch.float64)
    if k <= block:
        return (af @ bf).to(torch.int64)  # (m, n)
    total = torch.zeros(a.shape[0], b.shape[1], dtype=torch.int64, device=a.device)  # (m, n)
    for start in range(0, k, block):
        total += (af[:, start:start + block] @ bf[start:start + block]).to(torch.int64)
    return total


def matmul_weight(w: torch.Tensor) -> torch.Tensor:
    """Stored Q.28 weights as they enter a matmul: Q.16 int64."""
    return round_shift(w.to(torch.int64), W_FRAC - MATMUL_W_FRAC)


@dataclass(frozen=True)
class Activations:
    """What the forward pass keeps for the backward pass."""

    x: torch.Tensor  # (n, D) Q.12 inputs
    active: torch.Tensor  # (n, H) bool: ReLU passes and h is not saturated
    h: torch.Tensor  # (n, H) Q.12 hidden activations
    y: torch.Tensor  # (n, C) Q.16 outputs


def integer_forward(weights: Weights, x: torch.Tensor) -> Activations:
    """The MLP on float ``x`` (n, *shape): every step exact integer arithmetic."""
    x_q = quantize(x.flatten(1), ACT_FRAC, ACT_LIMIT)  # (n, D) Q.12
    w1, w2 = matmul_weight(weights["fc1.weight"]), matmul_weight(weights["fc2.weight"])  # (H, D), (C, H) Q.16
    pre = exact_matmul(x_q, w1.T) + weights["fc1.bias"].to(torch.int64)  # (n, H) Q.28
    h = round_shift(pre, W_FRAC - ACT_FRAC).clamp(0, ACT_LIMIT - 1)  # (n, H) Q.12
    active = (pre > 0) & (h < ACT_LIMIT - 1)
    out = exact_matmul(h, w2.T) + weights["fc2.bias"].to(torch.int64)  # (n, C) Q.28
    y = round_shift(out, W_FRAC - OUT_FRAC).clamp(-OUT_LIMIT, OUT_LIMIT - 1)  # (n, C) Q.16
    return Activations(x_q, active, h, y)


def dequantize_output(y: torch.Tensor) -> torch.Tensor:
    """Q.16 outputs as float32: exact (|y| < 2**23 fits float32's significand; the scale is a power of two)."""
    return y.to(torch.float32) * 2.0**-OUT_FRAC


def quantize_lr(lr: float) -> int:
    """The learning rate as Q.24; ValueError outside (2**-25, 1024)."""
    lr_q = round(lr * 2**LR_FRAC) if lr == lr and abs(lr) != float("inf") else 0
    if not 0 < lr_q < LR_MAX_Q:
        raise ValueError(f"fixed point: learning rate {lr} outside (2**-25, 1024)")
    return lr_q


def sgd_step(weights: Weights, x: torch.Tensor, grad: torch.Tensor, lr: float) -> Weights:
    """One SGD step ``w - lr * dL/dw`` of the weights that gave ``x``'s outputs, from the float
    output gradient ``grad`` (n, C) = dL/d(output): new int32 Q.28 weights, exact integer arithmetic."""
    lr_q = quantize_lr(lr)
    acts = integer_forward(weights, x)
    g = grad.detach().to(device=acts.y.device, dtype=torch.float64)  # (n, C)
    if tuple(g.shape) != tuple(acts.y.shape):
        raise ValueError(f"fixed point: gradient shape {tuple(g.shape)} != output shape {tuple(acts.y.shape)}")
    if not bool(torch.isfinite(g).all()):
        raise ValueError("fixed point: cannot quantise NaN or inf")
    g = g.clamp(-GRAD_LIMIT, GRAD_LIMIT)
    peak = float(g.abs().max()) if g.numel() else 0.0
    if peak == 0.0:
        return {name: w.detach().to(device="cpu", dtype=torch.int32).clone() for name, w in weights.items()}
    scale = GRAD_BITS - torch.frexp(torch.tensor(peak, dtype=torch.float64)).exponent.item()  # peak < 2**-scale * 2**23
    g_q = torch.round(g * 2.0**scale).to(torch.int64)  # (n, C) Q.scale, |g_q| <= 2**23
    w2 = matmul_weight(weights["fc2.weight"])  # (C, H) Q.16
    dh = exact_matmul(g_q, w2) * acts.active  # (n, H) Q.(scale+16)
    dh, cut = keep_bits(dh, GRAD_BITS + 1)  # Q.(scale+16-cut)
    grads = {  # name -> (integer gradient, its fractional bits)
        "fc2.weight": (exact_matmul(g_q.T, acts.h), scale + ACT_FRAC),  # (C, H)
        "fc2.bias": (g_q.sum(0), scale),  # (C,)
        "fc1.weight": (exact_matmul(dh.T, acts.x), scale + MATMUL_W_FRAC - cut + ACT_FRAC),  # (H, D)
        "fc1.bias": (dh.sum(0), scale + MATMUL_W_FRAC - cut),  # (H,)
    }
    new: Weights = {}
    for name, (dw, frac) in grads.items():
        dw, kept = keep_bits(dw, STEP_BITS)  # |dw| <= 2**28, Q.(frac-kept)
        step = round_shift(dw * lr_q, frac - kept + LR_FRAC - W_FRAC)  # lr * dL/dw in Q.28
        w = weights[name].to(device=step.device, dtype=torch.int64)
        new[name] = (w - step).clamp(*INT32).to(device="cpu", dtype=torch.int32)
    return new


class IntegerLinear(nn.Module):
    """A linear layer's Q.28 int32 weights (out, in) and bias (out,), as buffers (no autograd)."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("weight", weight)
        self.register_buffer("bias", bias)


class IntegerExpert(nn.Module):
    """An expert computed in integers: the runtime calls :meth:`integer_update` instead of autograd."""

    def integer_update(self, x: torch.Tensor, grad: torch.Tensor, lr: float) -> Weights:
        raise NotImplementedError


class IntegerMLPExpert(IntegerExpert):
    """The ``mlp`` expert's shape in fixed point; starts from a float MLP's initial weights, rounded."""

    def __init__(self, float_mlp: nn.Module) -> None:
        super().__init__()
        for name in ("fc1", "fc2"):
            layer = getattr(float_mlp, name)
            weight, bias = (quantize_weights(t) for t in (layer.weight, layer.bias))
            setattr(self, name, IntegerLinear(weight, bias))

    def weights(self) -> Weights:
        return dict(self.state_dict())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return dequantize_output(integer_forward(self.weights(), x).y)  # (n, C) float32

    def integer_update(self, x: torch.Tensor, grad: torch.Tensor, lr: float) -> Weights:
        device = self.fc1.weight.device
        return sgd_step(self.weights(), x.to(device), grad.to(device), lr)


def quantize_weights(w: torch.Tensor) -> torch.Tensor:
    """Float weights as Q.28 int32, saturated to [-8, 8) (works on the meta device too)."""
    return torch.round(w.detach().to(torch.float64) * 2.0**W_FRAC).clamp(*INT32).to(torch.int32)


def dequantize_weights(w: torch.Tensor) -> torch.Tensor:
    """Q.28 int32 weights as the real numbers they hold (float64, exact)."""
    return w.to(torch.float64) * 2.0**-W_FRAC
