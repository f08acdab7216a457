"""Withholding: the edge sends no result (and no update) in time."""

from __future__ import annotations

from typing import ClassVar

from bmoe.edge.behaviour import Attack, AttackContext, register


@register
class Withhold(Attack):
    name: ClassVar[str] = "withhold"

    def withholds(self, ctx: AttackContext) -> bool:
        return self.strikes(ctx)
