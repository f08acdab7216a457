"""Linear maps and expert calls whose every output row has the same bits whatever rows share its call.

A BLAS picks its kernel by the shape of the product: on this project's CPU (MKL, AVX2) a product of 1-3 rows
takes another path than one of 4 or more, so a row decoded alone (one token routed to an expert) and the same row
re-computed in a chunk's batched verification differed in their last bits (about 1e-6 relative). Padding every
call with zero rows to a multiple of :data:`ROW_MULTIPLE` removes that: measured on 2026-12-07 for d = 32...576,
widths 64...1536, 1-700 rows and 1, 2, 4 and 8 threads, each row's bits equal the same row's in any other padded
call (padding to a multiple of 8 instead had one exception: a 704-row call on 8 threads). It is a property of
the kernels measured, not a promise of every BLAS (a GPU's split-K kernels may differ):
``tests/lm/test_decoding_calls.py`` checks it where the tests run.

Must not know: which rows these are, the model's layout.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

ROW_MULTIPLE = 4  # pad every product to a multiple of this many rows (measured above)


def padded(x: torch.Tensor) -> torch.Tensor:
    """``x`` (n, i) with zero rows appended up to a multiple of :data:`ROW_MULTIPLE` rows."""
    missing = -x.shape[0] % ROW_MULTIPLE
    return torch.cat([x, x.new_zeros(missing, x.shape[1])]) if missing else x


def stable_linear(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """``x @ weight.T`` (n, i) -> (n, o), computed on padded rows so each row's bits do not depend on n."""
    return F.linear(padded(x), weight)[:x.shape[0]]


def stable_linears(x: torch.Tensor, *weights: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """:func:`stable_linear` of the same rows by several weights, the rows padded once."""
    rows = padded(x)
    return tuple(F.linear(rows, weight)[:x.shape[0]] for weight in weights)


def stable_expert(expert: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """A position-wise expert on rows ``x`` (n, d) -> (n, d), computed on padded rows (the zero rows' outputs
    are dropped; a position-wise expert's other rows never see them)."""
    return expert(padded(x))[:x.shape[0]]
