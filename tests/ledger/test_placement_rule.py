"""The placement rule (``ledger/placement.py``): every slot gets its h holders among edges with room for it, an edge
too small for a slot never gets it, the answer depends on nothing but its inputs, and a fleet that changes moves
few slots."""

from __future__ import annotations

import numpy as np
import pytest

from bmoe.ledger.placement import PlacementError, held_bytes, place


def _address(index: int) -> str:
    return f"{index:064x}"


def _random_fleet(seed: int) -> tuple[dict[str, int], list[int], int]:
    """Slots of uneven sizes and edges from far too small to twice the model, with enough large ones for h."""
    rng = np.random.default_rng(seed)
    slots = [int(size) for size in rng.integers(100, 1000, size=int(rng.integers(4, 40)))]
    whole = sum(slots)
    h = int(rng.integers(1, 4))
    memory = {_address(i): int(rng.integers(10, 2 * whole)) for i in range(int(rng.integers(h + 1, 10)))}
    for i in range(h):  # h edges that can each hold the whole model: the greedy can always finish
        memory[_address(100 + i)] = whole
    return memory, slots, h


@pytest.mark.parametrize("seed", range(12))
def test_every_slot_gets_h_distinct_holders_each_with_room_for_it(seed: int) -> None:
    memory, slots, h = _random_fleet(seed)
    holders = place(memory, slots, h)
    assert len(holders) == len(slots)
    for slot, edges in enumerate(holders):
        assert len(set(edges)) == len(edges) == h
        assert all(memory[edge] >= slots[slot] for edge in edges)
    for edge, held in held_bytes(holders, slots).items():
        assert held <= memory[edge]


def test_an_edge_too_small_for_any_slot_is_never_assigned() -> None:
    slots = [500, 700, 900, 300]
    memory = {_address(1): 10_000, _address(2): 10_000, _address(3): 299, _address(4): 10_000}
    holders = place(memory, slots, 3)
    assert all(_address(3) not in edges for edges in holders)
    small = {**memory, _address(3): 650}  # room for the 300 and the 500 byte slots, not the others
    held_by_small = [slot for slot, edges in enumerate(place(small, slots, 3)) if _address(3) in edges]
    assert all(slots[slot] <= 650 for slot in held_by_small)


def test_a_model_larger_than_any_edge_is_spread_and_a_small_one_sits_on_one_edge() -> None:
    slots = [400] * 10  # 4000 bytes
    spread = place({_address(i): 1500 for i in range(4)}, slots, 1)
    counts = {edge: sum(edges == [edge] for edges in spread) for edge in {edges[0] for edges in spread}}
    assert max(counts.values()) <= 3 and len(counts) >= 4  # no edge has room for a fourth slot: spread
    whole = place({_address(7): 4000}, slots, 1)
    assert whole == [[_address(7)]] * 10


def test_the_rule_names_the_slot_it_cannot_place() -> None:
    with pytest.raises(PlacementError, match="3 holders per slot, but only 2 active edges"):
        place({_address(1): 10_000, _address(2): 10_000}, [100], 3)
    with pytest.raises(PlacementError, match=r"slot 1 \(900 bytes\) has 1 of 2 holders"):
        place({_address(1): 10_000, _address(2): 800}, [100, 900], 2)


def test_the_placement_depends_on_nothing_but_its_inputs() -> None:
    memory, slots, h = _random_fleet(99)
    shuffled = dict(reversed(list(memory.items())))
    assert place(memory, slots, h) == place(shuffled, slots, h)
    ties = {_address(i): 5000 for i in range(5)}  # equal memories: ties go to the smaller address
    assert place(ties, [100], 2) == [[_address(0), _address(1)]]


def test_an_edge_that_leaves_moves_only_its_own_slots() -> None:
    memory, slots, h = _random_fleet(5)
    before = place(memory, slots, h)
    leaver = max(held_bytes(before, slots), key=lambda edge: (held_bytes(before, slots)[edge], edge))
    after = place({e: m for e, m in memory.items() if e != leaver}, slots, h, before)
    for slot, edges in enumerate(before):
        assert set(edges) - {leaver} <= set(after[slot])
        assert leaver not in after[slot]
        if leaver not in edges:
            assert after[slot] == edges


def test_an_edge_that_joins_takes_over_slots_and_the_others_keep_the_rest() -> None:
    slots = [300] * 12
    memory = {_address(i): 3000 for i in range(3)}
    before = place(memory, slots, 2)
    after = place({**memory, _address(9): 3000}, slots, 2, before)
    taken = [slot for slot, edges in enumerate(after) if _address(9) in edges]
    assert taken
    for slot, edges in enumerate(after):
        kept = set(edges) - {_address(9)}
        assert kept <= set(before[slot])  # nothing moved between the old edges
