"""What a chunk's settlement is made of, read from the chunk's call records and the engine's usage.

- :class:`ChunkUsage`: what the decoding measured for a chunk: the sequences decoded together in it (the load) and
  the tokens that stand (released or held past its verification, not discarded by a rollback) per payer;
- :func:`served_calls`: per edge, the calls whose accepted output it committed (the primary whose answer stood, and
  every replica that agreed), from the records object, so ``bmoe audit`` recounts what the settlement credited;
- :func:`active_sequences`: the distinct sequences in the records (the load an audit recounts);
- :func:`settlement_mismatch`: what ``bmoe audit`` finds wrong in a sealed settlement, given the records.

The price and the split are ``ledger/pricing.py``'s; the ledger's checks ``ledger/payments.py``'s.

Must not know: the engine, HTTP, the ledger's state.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from bmoe.ledger.payments import chunk_facts
from bmoe.protocol.generation.records import ChunkRecords


@dataclass(frozen=True)
class ChunkUsage:
    """A chunk's measured load and the tokens each payer owes for it."""

    active: int  # sequences decoded together in the chunk
    tokens: Mapping[str, int] = field(default_factory=dict)  # payer -> tokens that stand (requests naming a payer)


def served_calls(records: ChunkRecords, dissenters: frozenset[str] = frozenset()) -> dict[str, int]:
    """Edge -> the calls of the chunk whose accepted output it committed; ``dissenters`` (a dissent recorded in the
    chunk) are left out: a liar is not paid for the chunk."""
    served: Counter[str] = Counter()
    for call in records.calls:
        for edge, commitment in call.commitments.items():
            if commitment["outputs"] == call.accepted and edge not in dissenters:
                served[edge] += 1
    return dict(sorted(served.items()))


def active_sequences(records: ChunkRecords) -> int:
    """The distinct sequences the chunk's calls computed rows for."""
    return len({s for call in records.calls for s in call.sequences.tolist()})


def settlement_mismatch(records: ChunkRecords, chunk: Mapping[str, Any], settlement: Mapping[str, Any]) -> str | None:
    """How a sealed settlement differs from what the chunk's records show (its load, each edge's accepted calls),
    or None: what the ledger cannot check without the records object, ``bmoe audit`` checks with it."""
    active = active_sequences(records)
    if settlement["active"] != active:
        return (f"chunk {chunk['chunk']}: settled at a load of {settlement['active']} sequences, the records hold "
                f"{active}")
    served = served_calls(records, chunk_facts(chunk).dissenters)
    credited = {credit["edge"]: credit["calls"] for credit in settlement["credits"]}
    if credited != served:
        return f"chunk {chunk['chunk']}: credits {len(credited)} edges for calls the records do not show"
    return None
