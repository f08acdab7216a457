"""Verified generation over a heterogeneous fleet (``run/placement.py``): each edge holds only its placed experts,
fetched once by CID; every call's primary, replicas and dispute are drawn among its slot's holders; the ledger
recomputes the placement and refuses one the rule does not give, or a declaration its edge did not sign; edges join
and leave while generation goes on."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from bmoe.ledger.blocks import Block
from bmoe.ledger.errors import InvalidTransaction
from bmoe.ledger.keys import derive_identity
from bmoe.ledger.state import LedgerState, apply_block, apply_transaction, begin_block
from bmoe.ledger.transactions import Transaction, check_transaction_signature, sign_transaction, signing_message
from bmoe.protocol.generation.edges import EdgeGone
from bmoe.protocol.generation.holdings import NotHeld
from bmoe.protocol.generation.records import CallRecord, decode_records
from bmoe.run.placement import EdgeSpec, PlacedSession, measured_throughput
from tests.generation.helpers import clean_tokens, generate, liar, model
from tests.generation.placement_helpers import fleet, placed, sealed_blocks


@dataclass(frozen=True)
class Served:
    """A placed session that generated every prompt, its tokens and its sealed blocks."""

    session: PlacedSession
    tokens: list[list[int]]
    blocks: list[Block]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Served:
    s = placed(model(), run_dir=tmp_path_factory.mktemp("placed"), replicas=2)
    tokens = generate(s.session)
    return Served(s, tokens, sealed_blocks(s))


def holders_and_calls(s: PlacedSession) -> list[tuple[list[list[str]], CallRecord]]:
    """Every recorded call with the holders in force when its chunk was sealed (replayed from the chain)."""
    found = []
    holders: list[list[str]] = []
    for block in sealed_blocks(s):
        for tx in block.transactions:
            if tx.kind == "placement":
                holders = [list(h) for h in tx.payload["holders"]]
            elif tx.kind == "generation_chunk":
                records = decode_records(s.session.store.get(tx.payload["records"]))
                found.extend((holders, call) for call in records.calls)
    return found


def _replayed(blocks: list[Block]) -> LedgerState:
    state = LedgerState()
    for block in blocks:
        state = apply_block(state, block)
    return state


def test_a_placed_fleet_generates_what_one_process_does(served: Served) -> None:
    assert served.tokens == clean_tokens(model())


def test_each_edge_fetches_exactly_its_placed_experts_and_the_small_one_nothing(served: Served) -> None:
    s = served.session
    tiny = list(s.specs)[5]
    assert all(tiny not in edges for edges in s.holders)
    assert tiny not in s.fetched()
    for address, fetched in s.fetched().items():
        held = [slot for slot, edges in enumerate(s.holders) if address in edges]
        assert fetched == sum(s.slot_bytes[slot] for slot in held) == s.holdings[address].held_bytes()
        assert fetched <= s.specs[address].memory
    assert all(len(edges) == 3 for edges in s.holders)


def test_the_ledger_replayed_recomputes_the_placement(served: Served) -> None:
    fleet_state = _replayed(served.blocks).fleet
    assert fleet_state.holders == served.session.holders
    assert fleet_state.declarations.keys() == served.session.specs.keys()


def test_primaries_and_replicas_are_drawn_only_among_a_slots_holders(served: Served) -> None:
    calls = holders_and_calls(served.session)
    assert calls
    for holders, call in calls:
        assert call.primary in holders[call.slot]
        assert set(call.replicas) <= set(holders[call.slot]) - {call.primary}
        assert len(call.replicas) == 2


def test_a_lie_is_disputed_among_the_slots_holders_and_recorded(tmp_path: Path) -> None:
    m = model()
    s = placed(m, run_dir=tmp_path, replicas=1)
    edge = list(s.specs)[4]  # the 40% edge: the others can still hold three copies without it
    slot = next(slot for slot, edges in enumerate(s.holders) if edge in edges)
    s.session.edges[4].attack = liar(*divmod(slot, m.config.num_local_experts))
    assert generate(s.session) == clean_tokens(m)
    disputes = [(holders, call) for holders, call in holders_and_calls(s) if call.disputed]
    assert disputes
    for holders, call in disputes:
        assert set(call.commitments) <= set(holders[call.slot])
    assert s.session.decoding.stats.accused == [edge]
    assert edge in s.left  # recorded gone by the validator, and placed around
    assert all(edge not in edges for edges in s.holders)


def _before(blocks: list[Block], kind: str) -> tuple[LedgerState, Transaction]:
    state = LedgerState()
    for block in blocks:
        working = begin_block(state)
        for tx in block.transactions:
            if tx.kind == kind:
                return working, tx
            apply_transaction(working, tx)
        state = apply_block(state, block)
    raise AssertionError(f"no {kind} transaction")


def _refusal(state: LedgerState, tx: Transaction) -> str | None:
    try:
        check_transaction_signature(tx)
        apply_transaction(state, tx)
    except InvalidTransaction as err:
        return err.reason
    return None


def test_the_ledger_refuses_a_placement_the_rule_does_not_give(served: Served) -> None:
    s = served.session
    state, tx = _before(served.blocks, "placement")
    assert _refusal(begin_block(state), tx) is None
    tiny = list(s.specs)[5]
    holders = [list(h) for h in tx.payload["holders"]]
    holders[0] = sorted([*holders[0][:2], tiny])
    validator = s.session.validator
    for payload, reason in [({**tx.payload, "holders": holders}, "slot 0: holders are not the placement rule's"),
                            ({**tx.payload, "epoch": 1}, "placement epoch 1, expected 0"),
                            ({**tx.payload, "holders_per_slot": 7}, "7 holders per slot, but only 6 active")]:
        forged = sign_transaction(validator, "placement", payload, tx.nonce)
        refused = _refusal(begin_block(state), forged)
        assert refused is not None and reason in refused


def test_the_ledger_refuses_a_declaration_its_edge_did_not_sign(served: Served) -> None:
    s = served.session
    state, tx = _before(served.blocks, "capability")
    other = s.pool[list(s.specs)[1]].identity
    message = signing_message(tx.kind, tx.sender, tx.nonce, {**tx.payload, "memory": 10**12})
    forged = Transaction(tx.kind, tx.sender, tx.nonce, {**tx.payload, "memory": 10**12}, other.sign(message))
    assert _refusal(begin_block(state), forged) == "bad signature"
    outsider = derive_identity(0, "not-enrolled")
    unknown = sign_transaction(outsider, "capability", dict(tx.payload), 0)
    assert _refusal(begin_block(state), unknown) == "capability: only an enrolled edge declares its capability"


def test_only_the_edge_itself_or_a_validator_records_its_departure(served: Served) -> None:
    s = served.session
    state = _replayed(served.blocks)
    leaver, other = list(s.specs)[3], s.pool[list(s.specs)[2]].identity
    by_other = sign_transaction(other, "departure", {"edge": leaver}, state.next_nonce(other.address))
    assert _refusal(begin_block(state), by_other) == ("departure: only the edge itself or a validator records its "
                                                      "departure")
    itself = s.pool[leaver].identity
    assert _refusal(begin_block(state), sign_transaction(itself, "departure", {"edge": leaver},
                                                         state.next_nonce(leaver))) is None


def test_an_edge_joins_mid_run_fetches_its_experts_and_serves(tmp_path: Path) -> None:
    m = model()
    s = placed(m, run_dir=tmp_path, specs=fleet(m)[1:], holders=2)  # no edge holds the whole model
    joined: list[str] = []
    whole = sum(s.slot_bytes)
    tokens = generate(s.session, lambda step: joined.append(s.join(EdgeSpec(whole, delay=0.0))) if step == 5 else None)
    assert tokens == clean_tokens(m)
    address = joined[0]
    assert address in s.specs and s.epoch == 1
    assert s.fetched()[address] == s.holdings[address].held_bytes() > 0
    served_by_it = [call for holders, call in holders_and_calls(s) if call.primary == address]
    assert served_by_it


def test_an_edge_leaves_mid_run_and_is_placed_around(tmp_path: Path) -> None:
    m = model()
    s = placed(m, run_dir=tmp_path)
    leaver = list(s.specs)[3]
    tokens = generate(s.session, lambda step: s.leave(leaver) if step == 5 else None)
    assert tokens == clean_tokens(m)
    assert leaver in s.left and all(leaver not in edges for edges in s.holders)
    calls = holders_and_calls(s)
    later = [call for holders, call in calls if leaver not in [e for edges in holders for e in edges]]
    assert later and all(call.primary != leaver and leaver not in call.replicas for call in later)
    state = _replayed(sealed_blocks(s))
    assert leaver not in state.fleet.declarations and state.fleet.holders == s.holders


def test_an_edge_gone_mid_run_is_recorded_by_the_validator_and_placed_around(tmp_path: Path) -> None:
    m = model()
    s = placed(m, run_dir=tmp_path)
    gone = list(s.specs)[3]
    tokens = generate(s.session, lambda step: s.pool[gone].kill() if step == 6 else None)
    assert tokens == clean_tokens(m)
    departures = [tx for block in sealed_blocks(s) for tx in block.transactions if tx.kind == "departure"]
    assert [(tx.sender, tx.payload["edge"]) for tx in departures] == [(s.session.validator.address, gone)]
    assert all(gone not in edges for edges in s.holders)


def test_an_edge_asked_for_a_slot_it_does_not_hold_refuses_as_an_edge_gone(served: Served) -> None:
    s = served.session
    m = model()
    experts = m.config.num_local_experts
    address = list(s.specs)[4]  # the 40% edge: it holds some slots, not all
    slot = next(slot for slot, edges in enumerate(s.holders) if address not in edges)
    held = next(slot for slot, edges in enumerate(s.holders) if address in edges)
    rows = torch.randn(3, m.config.hidden_size, generator=torch.Generator().manual_seed(0))  # (3, d)
    edge = s.pool[address]
    assert edge.compute(*_routed(held, experts, rows))[held % experts].shape == rows.shape
    with pytest.raises(EdgeGone) as refused:
        edge.compute(*_routed(slot, experts, rows))
    assert isinstance(refused.value, NotHeld) and refused.value.slot == slot
    assert edge.alive  # a refusal, not a death: it goes on serving its own slots


def _routed(slot: int, experts: int, rows: torch.Tensor) -> tuple[int, dict[int, torch.Tensor]]:
    layer, expert = divmod(slot, experts)
    return layer, {expert: rows}


def test_an_edge_measures_its_throughput() -> None:
    assert measured_throughput(model(), rows=8, repeats=2) > 0
