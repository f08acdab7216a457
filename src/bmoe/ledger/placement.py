"""Heterogeneous edges on the ledger: what each edge declares it can hold, and which edges hold each expert slot.

PolyLink's crowdsourced devices differ: one holds the whole model, another a few experts. Three transaction kinds
record who may serve what, and the rule here decides it, so anyone replaying the chain recomputes who was eligible:

- ``capability`` (sent and signed by an edge the genesis enrolled): ``memory``, the bytes of expert weights it can
  hold; ``profile``, its numeric profile (``edge/profiles.py``'s names); ``throughput``, the expert rows per
  second it measured (0: not measured; recorded, not used by the rule). Declaring makes the edge *active*; a
  later declaration replaces its earlier one. The genesis's edge list is the pool of keys that may join: an edge
  joins mid-run by declaring, so enrolment (and with it stake and Sybil resistance) stays the genesis's.
- ``departure`` (``edge``): the edge is no longer active. Sent by the edge itself (it leaves) or by a validator
  (it was recorded gone: it stopped answering). It stays enrolled and may declare again.
- ``placement`` (a validator's): ``epoch`` (0, 1, ... in order), ``holders_per_slot`` (h), ``slot_bytes`` (the
  size of every slot's expert object, fixed by the first placement) and ``holders`` (slot -> its h holders,
  sorted). The ledger refuses one that is not :func:`place` over the active declarations recorded so far and the
  holders in force.

:func:`place` is greedy and deterministic. The fleet needs ``sum(slot_bytes) * h`` bytes; each active edge's fair
share of it is proportional to its memory. First every current holder still active keeps its slots, in slot
order, while they fit its memory and its fair share give or take one slot (the largest slot's bytes). Then each
slot lacking holders, largest first (ties: slot order), takes the edge furthest below its fair share (ties: a
current holder, then the smaller address) among those not yet holding it that have room for it. So an edge that
leaves moves only its own slots (everyone's share grows), and one that joins takes over what the others hold beyond
their new shares and that slot of slack. An edge with less free memory than a slot's object is never given it;
when no edge is left for a slot, :class:`PlacementError` says which slot and why. A model larger than any edge is
spread across edges; a fleet of one edge (h = 1) holds the whole model on it. (Greedy, so a fleet whose capacity
could only just be packed some other way may be refused.)

Must not know: tensors, storage, the engine, the edges' transport.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

PLACEMENT_KINDS = ("capability", "departure", "placement")


class PlacementError(ValueError):
    """The active edges cannot give every slot its holders."""


@dataclass(frozen=True)
class Declaration:
    """What an active edge declared it can hold and run."""

    memory: int  # bytes of expert weights
    profile: str  # numeric profile name
    throughput: float  # expert rows per second it measured (0: not measured)

    def to_dict(self) -> dict[str, Any]:
        return {"memory": self.memory, "profile": self.profile, "throughput": self.throughput}


@dataclass
class PlacementState:
    """The ledger's view of the fleet: the active declarations and the placement in force (none before the first
    ``placement``: every enrolled edge may then serve every slot, as without placement)."""

    declarations: dict[str, Declaration] = field(default_factory=dict)  # active edge -> its declaration
    epoch: int = -1  # the last placement's epoch (-1: none yet)
    holders_per_slot: int = 0
    slot_bytes: list[int] = field(default_factory=list)
    holders: list[list[str]] = field(default_factory=list)  # slot -> its holders (empty: no placement)
    declared: bool = False  # any capability was ever recorded (the summary then names the fleet)

    def summary(self) -> dict[str, Any] | None:
        """The part the state root commits to; None on a chain that never declared anything (its roots unchanged)."""
        if not self.declared:
            return None
        return {"declarations": {edge: d.to_dict() for edge, d in sorted(self.declarations.items())},
                "epoch": self.epoch, "holders_per_slot": self.holders_per_slot, "slot_bytes": list(self.slot_bytes),
                "holders": [list(h) for h in self.holders]}


def place(memory: Mapping[str, int], slot_bytes: Sequence[int], holders_per_slot: int,
          current: Sequence[Sequence[str]] = ()) -> list[list[str]]:
    """Each slot's ``holders_per_slot`` holders (sorted addresses) among the edges of ``memory`` (address -> bytes
    it can hold), keeping ``current`` holders where they still fit (module docstring); PlacementError if none can."""
    if holders_per_slot < 1:
        raise PlacementError(f"holders per slot must be at least 1, got {holders_per_slot}")
    if holders_per_slot > len(memory):
        raise PlacementError(f"{holders_per_slot} holders per slot, but only {len(memory)} active edges")
    need, total = sum(slot_bytes) * holders_per_slot, sum(memory.values())
    slack = max(slot_bytes, default=0)
    used = dict.fromkeys(memory, 0)

    def room(edge: str) -> int:  # (its fair share - its bytes so far) x total: exact in integers
        return memory[edge] * need - used[edge] * total

    holders: list[list[str]] = [[] for _ in slot_bytes]
    for slot, kept in enumerate(current[:len(slot_bytes)]):
        size = slot_bytes[slot]
        for edge in sorted(kept):
            if (edge in memory and used[edge] + size <= memory[edge] and room(edge) + slack * total >= size * total
                    and len(holders[slot]) < holders_per_slot):
                holders[slot].append(edge)
                used[edge] += size
    for slot in sorted(range(len(slot_bytes)), key=lambda s: (-slot_bytes[s], s)):
        size = slot_bytes[slot]
        while len(holders[slot]) < holders_per_slot:
            fits = [edge for edge in memory if edge not in holders[slot] and used[edge] + size <= memory[edge]]
            if not fits:
                raise PlacementError(f"slot {slot} ({size} bytes) has {len(holders[slot])} of {holders_per_slot} "
                                     f"holders and no other active edge has {size} bytes free")
            before = current[slot] if slot < len(current) else ()
            edge = min(fits, key=lambda e: (-room(e), e not in before, e))
            holders[slot].append(edge)
            used[edge] += size
    return [sorted(h) for h in holders]


def held_bytes(holders: Sequence[Sequence[str]], slot_bytes: Sequence[int]) -> dict[str, int]:
    """Each holder's bytes of expert weights under ``holders``."""
    held: dict[str, int] = {}
    for slot, edges in enumerate(holders):
        for edge in edges:
            held[edge] = held.get(edge, 0) + slot_bytes[slot]
    return held


# ---------------------------------------------------------------- the rules the state machine applies


def capability_error(sender: str, enrolled: Sequence[str]) -> str | None:
    """Why ``sender`` may not declare, or None: only an enrolled edge declares, for itself (the sender signs)."""
    return None if sender in enrolled else "only an enrolled edge declares its capability"


def departure_error(sender: str, edge: str, validators: Sequence[str], fleet: PlacementState) -> str | None:
    """Why ``sender`` may not record ``edge``'s departure, or None: the edge itself, or a validator; an active edge."""
    if sender != edge and sender not in validators:
        return "only the edge itself or a validator records its departure"
    return None if edge in fleet.declarations else f"{edge[:12]} is not an active edge"


def placement_error(payload: Mapping[str, Any], fleet: PlacementState, slots: int) -> str | None:
    """Why a ``placement`` payload is not what :func:`place` gives over the recorded declarations, or None."""
    if payload["epoch"] != fleet.epoch + 1:
        return f"placement epoch {payload['epoch']}, expected {fleet.epoch + 1}"
    slot_bytes = list(payload["slot_bytes"])
    if len(slot_bytes) != slots or len(payload["holders"]) != slots:
        return f"slot_bytes and holders must list every one of the {slots} slots"
    if fleet.slot_bytes and slot_bytes != fleet.slot_bytes:
        return "slot_bytes differ from the first placement's"
    if fleet.holders_per_slot and payload["holders_per_slot"] != fleet.holders_per_slot:
        return f"holders_per_slot must stay {fleet.holders_per_slot}"
    memory = {edge: d.memory for edge, d in fleet.declarations.items()}
    try:
        expected = place(memory, slot_bytes, payload["holders_per_slot"], fleet.holders)
    except PlacementError as err:
        return f"no placement is possible: {err}"
    if [list(h) for h in payload["holders"]] != expected:
        wrong = next(slot for slot, h in enumerate(payload["holders"]) if list(h) != expected[slot])
        return f"slot {wrong}: holders are not the placement rule's over the recorded declarations"
    return None


def apply_placement(fleet: PlacementState, payload: Mapping[str, Any]) -> None:
    """Record a placement :func:`placement_error` accepted."""
    fleet.epoch = payload["epoch"]
    fleet.holders_per_slot = payload["holders_per_slot"]
    fleet.slot_bytes = list(payload["slot_bytes"])
    fleet.holders = [list(h) for h in payload["holders"]]


def slot_edges(fleet: PlacementState, slot: int, enrolled: Sequence[str]) -> Sequence[str]:
    """The edges eligible for ``slot``'s calls and disputes: its holders under the placement in force, else every
    enrolled edge."""
    return fleet.holders[slot] if fleet.holders else enrolled
