"""Verified generation as its pages show it, derived from the replayed chain and the chunks' call records.

Owns reading verified generation's conventions back (``ledger/generation.py``, ``protocol/generation/records.py``):
each ``generation_chunk`` transaction is one sealed chunk of a generation session (its counts, seed, Merkle root of
the accepted outputs, disputes and records against edges); a slot ``s`` is (layer, expert) ``divmod(s, N)`` with N
the model's experts per layer (the trusted object's manifest); a chunk's records say, for each call, the (sequence,
position) of the token each of its rows belongs to, so which experts of each layer every token was routed to.
Must not know HTML, HTTP or files.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from bmoe.explorer.index import ChainIndex
from bmoe.ledger.transactions import tx_hash
from bmoe.protocol.generation.records import ChunkRecords

Token = tuple[int, int]  # (sequence, position): the engine's sequence id, the token's position in it


@dataclass(frozen=True)
class ChunkEntry:
    """One sealed chunk: the block that sealed it, its transaction's hash and payload."""

    height: int
    tx: str
    payload: Mapping[str, Any]

    @property
    def generation(self) -> str:
        return str(self.payload["generation"])

    @property
    def chunk(self) -> int:
        return int(self.payload["chunk"])

    @property
    def records_against(self) -> list[Mapping[str, Any]]:
        return list(self.payload["records_against"])

    @property
    def disputed_slots(self) -> set[int]:
        return {entry["slot"] for entry in self.payload["disputes"]}


@dataclass(frozen=True)
class GenerationSession:
    """A generation session on the chain (``state.generations``): its chunks in order, and their sums."""

    generation: str
    chunks: tuple[ChunkEntry, ...]

    def total(self, name: str) -> int:
        """The sum over the chunks of a payload count: tokens, calls, rows, checked."""
        return sum(int(c.payload[name]) for c in self.chunks)

    @property
    def disputes(self) -> int:
        return sum(len(c.payload["disputes"]) for c in self.chunks)

    @property
    def records_against(self) -> int:
        return sum(len(c.records_against) for c in self.chunks)


@dataclass(frozen=True)
class EdgeRecord:
    """A record against an edge in a chunk: the call's slot as (layer, expert), the reason, the rows named."""

    chunk: ChunkEntry
    edge: str
    slot: int
    reason: str  # dissent | withheld
    rows: tuple[Token, ...]


@dataclass(frozen=True)
class TokenRoute:
    """The experts of each layer one token was routed to in a chunk's calls."""

    token: Token
    experts: tuple[tuple[int, ...], ...]  # (L,): layer -> its experts, ascending


def generation_chunks(index: ChainIndex) -> list[ChunkEntry]:
    """Every ``generation_chunk`` transaction on the chain, in chain order."""
    return [ChunkEntry(block.height, tx_hash(tx), tx.payload) for block in index.blocks
            for tx in block.transactions if tx.kind == "generation_chunk"]


def sessions(chunks: Iterable[ChunkEntry]) -> list[GenerationSession]:
    """The chunks grouped by generation session, in the order each session first sealed a chunk."""
    grouped: dict[str, list[ChunkEntry]] = defaultdict(list)
    for chunk in chunks:
        grouped[chunk.generation].append(chunk)
    return [GenerationSession(generation, tuple(found)) for generation, found in grouped.items()]


def find_chunk(chunks: Iterable[ChunkEntry], generation: str, chunk: int) -> ChunkEntry | None:
    return next((c for c in chunks if c.generation == generation and c.chunk == chunk), None)


def edge_records(chunks: Iterable[ChunkEntry], edge: str | None = None) -> list[EdgeRecord]:
    """The records against edges (``edge``'s alone when given) in the chunks, in chain order."""
    return [EdgeRecord(chunk, r["edge"], r["slot"], r["reason"], tuple((s, p) for s, p in r["rows"]))
            for chunk in chunks for r in chunk.records_against if edge is None or r["edge"] == edge]


def token_routes(records: ChunkRecords, experts_per_layer: int, layers: int) -> list[TokenRoute]:
    """For each (sequence, position) with a row in the chunk's calls, the experts of each layer it was routed to,
    sorted by sequence and position."""
    routed: dict[Token, list[set[int]]] = {}
    for call in records.calls:
        layer, expert = divmod(call.slot, experts_per_layer)
        for sequence, position in zip(call.sequences.tolist(), call.positions.tolist(), strict=True):
            routed.setdefault((sequence, position), [set() for _ in range(layers)])[layer].add(expert)
    return [TokenRoute(token, tuple(tuple(sorted(experts)) for experts in routed[token])) for token in sorted(routed)]
