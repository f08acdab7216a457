"""A click type for a float flag that must be a finite number: click's ``FloatRange`` lets ``nan`` through (every
comparison with NaN is false) and ``inf`` past any open-ended range.

Must not know: any command.
"""

from __future__ import annotations

import math
from typing import Any

import click


class FiniteFloatRange(click.FloatRange):
    """``click.FloatRange`` that refuses NaN and infinities; with no bounds, any finite float."""

    name = "float range"  # as click shows it in help

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"must be a finite number, got {value}", param, ctx)
        return number
