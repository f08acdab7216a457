"""Verified generation in process: the fast path's lies are located, rolled back and recorded on the ledger; the
generated tokens are the clean ones; the chain replays; a dead edge costs nothing but its chunk's end."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from bmoe.ledger.blocks import Block
from bmoe.ledger.chainstore import ChainStore
from bmoe.protocol.generation.chunk import NoQuorum
from bmoe.protocol.generation.records import decode_records
from bmoe.run.lm.artifacts import chain_states
from tests.generation.helpers import clean_tokens, generate, liar, model, session

SLOT_OF_LIE = 1 * 4 + 2  # layer 1, expert 2 of the tiny model (4 experts a layer)


def test_an_honest_session_generates_the_clean_tokens_one_chunk_a_block() -> None:
    m = model()
    s = session(m)
    assert generate(s) == clean_tokens(m)
    state = s.node.view()
    stats = s.decoding.stats
    assert stats.chunks == state.height == state.generations["gen-0"] > 1
    assert stats.disputes == stats.rollbacks == 0 and not stats.accused
    assert stats.replica_rows == stats.fast_rows  # r = 1: every row re-computed once
    assert state.generated_tokens == stats.tokens == sum(len(t) for t in clean_tokens(m))
    assert all(r.dissent == r.withheld == 0 for r in state.edge_records.values())


def test_a_lying_edge_is_located_rolled_back_and_slashed_and_the_text_is_clean() -> None:
    m = model()
    s = session(m, {4: liar(1, 2)}, stake=1000)
    assert generate(s) == clean_tokens(m)
    liar_address = s.edges[4].address
    state = s.node.view()
    assert state.edge_records[liar_address].dissent > 0
    assert state.balances[liar_address].slashed > 0
    honest = [e.address for e in s.edges[:4]]
    assert all(state.edge_records[a].dissent == 0 and state.balances[a].slashed == 0 for a in honest)
    assert s.decoding.stats.accused == [liar_address] and s.decoding.stats.rollbacks > 0
    # every record names the lying (layer, expert) and, when the liar answered on the fast path, each of its rows
    located = 0
    for sealed in s.decoding.sealed:
        records = decode_records(s.store.get(sealed.records))
        for call in records.calls:
            if call.disputed:
                assert call.slot == SLOT_OF_LIE
                assert call.commitments[liar_address]["outputs"] != call.accepted
                if call.primary == liar_address:
                    located += 1
    assert located > 0


def test_the_records_name_the_liars_rows_token_by_token(tmp_path: Path) -> None:
    m = model()
    s = session(m, {4: liar(1, 2)}, run_dir=tmp_path)
    generate(s)
    liar_address = s.edges[4].address
    named = 0
    states = list(chain_states(tmp_path / "chain.sqlite"))  # the chain replays, block by block
    assert states[-1].edge_records[liar_address].dissent > 0
    for block in _blocks(tmp_path):
        for tx in block.transactions:
            if tx.kind != "generation_chunk":
                continue
            records = {c.slot: c for c in decode_records(s.store.get(tx.payload["records"])).calls}
            for record in tx.payload["records_against"]:
                assert (record["edge"], record["slot"], record["reason"]) == (liar_address, SLOT_OF_LIE, "dissent")
                call = records[SLOT_OF_LIE]
                rows = torch.stack([call.sequences, call.positions], dim=1).tolist()  # every row: all were zeroed
                assert record["rows"] == rows[:64]
                named += len(record["rows"])
    assert named > 0


def _blocks(run_dir: Path) -> list[Block]:
    with ChainStore(run_dir / "chain.sqlite", readonly=True) as chain:
        return list(chain.iter_blocks())


def test_a_seeded_session_seals_the_same_chain_every_time() -> None:
    m = model()
    heads = []
    for seed in (0, 0, 1):
        s = session(m, {4: liar(1, 2)}, seed=seed)
        generate(s)
        heads.append(s.head_hash)
    assert heads[0] == heads[1] != heads[2]


def test_colluders_under_a_third_change_nothing() -> None:
    m = model()
    s = session(m, {7: liar(0, 1), 8: liar(0, 1), 9: liar(0, 1)}, edges=10, replicas=3)
    assert generate(s) == clean_tokens(m)
    assert sorted(s.decoding.stats.accused) == sorted(e.address for e in s.edges[7:])


def test_without_a_quorum_nothing_is_accepted() -> None:
    m = model()
    zero = liar(0, 0)

    def identity(layer: int, expert: int, inputs: torch.Tensor, outputs: torch.Tensor) -> torch.Tensor:
        return inputs.clone() if (layer, expert) == (0, 0) else outputs
    s = session(m, {2: zero, 3: liar(0, 0), 4: identity}, replicas=4)
    with pytest.raises(NoQuorum, match="fewer than the quorum 3"):
        generate(s)


def test_a_killed_edge_leaves_the_generation_unchanged() -> None:
    m = model()
    s = session(m)
    victim = s.edges[2]
    tokens = generate(s, lambda step: victim.kill() if step == 5 else None)
    assert tokens == clean_tokens(m)
    assert s.decoding.stats.gone == [victim.address]
    assert all(s.node.view().edge_records[e.address].dissent == 0 for e in s.edges)


def test_an_audit_probability_checks_some_calls() -> None:
    m = model()
    s = session(m, probability=0.5)
    assert generate(s) == clean_tokens(m)
    stats = s.decoding.stats
    assert 0 < stats.checked < stats.calls


def test_an_accused_edge_recomputes_nothing_after_its_record() -> None:
    m = model()
    s = session(m, {4: liar(1, 2)})
    generate(s)
    liar_address = s.edges[4].address
    accused_at = None
    for sealed in s.decoding.sealed:
        calls = decode_records(s.store.get(sealed.records)).calls
        if accused_at is not None:  # every chunk after the one that caught it
            assert all(liar_address not in c.replicas and liar_address not in c.commitments
                       and c.primary != liar_address for c in calls)
        elif sealed.records_against:
            accused_at = sealed.chunk
    assert accused_at is not None and accused_at < s.decoding.sealed[-1].chunk


def test_a_chunks_evidence_may_fill_what_the_genesis_allows() -> None:
    from bmoe.ledger.schemas import GENERATION_BYTES_PER_SLOT_EDGE, MAX_PAYLOAD_BYTES, Limits, payload_cap
    smollm2 = Limits(experts=30 * 8, edges=10)
    assert payload_cap("generation_chunk", smollm2) == 240 * 10 * GENERATION_BYTES_PER_SLOT_EDGE > MAX_PAYLOAD_BYTES
    assert payload_cap("commitment", smollm2) == MAX_PAYLOAD_BYTES
    assert payload_cap("generation_chunk", Limits(experts=4, edges=3)) == MAX_PAYLOAD_BYTES
