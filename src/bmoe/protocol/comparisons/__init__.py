"""The comparisons' tensor code, one file per comparison, and its registry by comparison name.

``verify/comparison.py`` holds the ``Comparison`` seam without tensors (verify imports no torch and no
layer above it); the tensor side of each comparison lives here (``checks.py`` says what is asked of it):
``exact.py`` (also ``integer``'s: equal bytes), ``tolerance.py`` with ``grouping.py`` (within a bound, the
accepted value a median). A new comparison is its dataclass in ``verify/comparison.py``, one file here and
one entry in :data:`TENSOR_CHECKS`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from bmoe.protocol.comparisons.checks import TensorChecks
from bmoe.protocol.comparisons.exact import ExactChecks
from bmoe.protocol.comparisons.tolerance import ToleranceChecks
from bmoe.verify.comparison import Comparison, ComparisonError

TENSOR_CHECKS: Mapping[str, Callable[[Any], TensorChecks]] = {
    "exact": ExactChecks, "integer": ExactChecks, "tolerance": ToleranceChecks}


def tensor_checks(comparison: Comparison) -> TensorChecks:
    """The tensor checks of the comparison in force."""
    make = TENSOR_CHECKS.get(comparison.name)
    if make is None:
        raise ComparisonError(f"comparison {comparison.name}: no tensor checks registered")
    return make(comparison)
