"""What the state machine derives from the genesis (its acceptance rule, comparison, assignment policy, the edges
and validators), built once per genesis instead of on every transaction that asks.

A state's genesis is the payload of block 0's ``genesis`` transaction, read-only once recorded, and each view is a
pure function of it (a frozen rule object, a tuple): :class:`GenesisViews` keeps the views of the one genesis
object it last served, holding that object (so its ``id`` is never another's) and starting afresh for any other.
A deep copy of a state (a new block's working copy) has a new genesis object: its views are built again, once.

Must not know what the views mean: each is given its builder, from one entry of the genesis.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


class GenesisViews:
    """Views of one genesis object, each built on first use."""

    def __init__(self) -> None:
        self._genesis: dict[str, Any] | None = None
        self._views: dict[str, Any] = {}

    def view(self, genesis: dict[str, Any], key: str, build: Callable[[Any], T]) -> T:
        """``build(genesis[key])``, once per genesis object and ``key``."""
        if self._genesis is not genesis:
            self._genesis, self._views = genesis, {}
        if key not in self._views:
            self._views[key] = build(genesis[key])
        return self._views[key]  # type: ignore[no-any-return]

    def __deepcopy__(self, memo: dict[int, Any]) -> GenesisViews:
        return GenesisViews()  # the copy's genesis is another object: its views are built for it
