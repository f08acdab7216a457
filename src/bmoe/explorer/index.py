"""The chain replayed once and indexed for the explorer's pages.

Owns the replay (``ledger/state.apply_block``, block by block from the genesis, the same function
``bmoe audit`` and ``bmoe records`` replay with) and what it keeps along the way: every block, every
task's decisions (``task_view``), each edge's record after every block, each expert's CIDs and
activation shares, every place a CID is named (``ledger/audit.named_objects``), and how many tasks in a
row failed to reach quorum (``protocol/quorum_watch``, the count a validator keeps). Lookups by
height, hash, task id, address and CID. Must not know HTML, HTTP or where the chain file lives.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from bmoe.explorer.model import BlockView, EdgePoint, ExpertHistory, Mention, TaskView
from bmoe.explorer.task_view import task_views
from bmoe.ledger.audit import named_objects
from bmoe.ledger.blocks import Block
from bmoe.ledger.state import LedgerState, apply_block
from bmoe.ledger.transactions import tx_hash
from bmoe.protocol.quorum_watch import QuorumWatch


@dataclass
class ChainIndex:
    """Everything the pages read, derived from the blocks alone."""

    blocks: list[BlockView] = field(default_factory=list)  # by height
    tasks: list[TaskView] = field(default_factory=list)  # in chain order
    state: LedgerState = field(default_factory=LedgerState)  # after the last block
    names: dict[str, str] = field(default_factory=dict)  # address -> edge-3, validator-0, publisher
    edge_history: dict[str, list[EdgePoint]] = field(default_factory=dict)
    experts: list[ExpertHistory] = field(default_factory=list)
    mentions: dict[str, list[Mention]] = field(default_factory=dict)  # CID -> where the ledger names it
    transactions: dict[str, tuple[int, int]] = field(default_factory=dict)  # tx hash -> (height, index)
    quorum: QuorumWatch = field(default_factory=QuorumWatch)  # tasks in a row without quorum, at the head
    _by_hash: dict[str, int] = field(default_factory=dict)

    @property
    def genesis(self) -> dict[str, Any]:
        assert self.state.genesis is not None
        return self.state.genesis

    @property
    def head(self) -> BlockView:
        return self.blocks[-1]

    def block(self, ref: str) -> BlockView | None:
        """The block at a height (decimal) or with a hash."""
        if ref.isdecimal():
            height = int(ref)
            return self.blocks[height] if height < len(self.blocks) else None
        height = self._by_hash.get(ref)
        return None if height is None else self.blocks[height]

    def tasks_named(self, task_id: str) -> list[TaskView]:
        """Every task recorded under ``task_id`` (a run that served the test set twice reuses ids)."""
        return [task for task in self.tasks if task.task_id == task_id]

    def name(self, address: str) -> str:
        return self.names.get(address, address[:12])

    def edge_index(self, ref: str) -> int | None:
        """An edge by address, ``edge-N`` or its position N in the genesis."""
        edges = self.state.edges
        if ref in edges:
            return edges.index(ref)
        number = ref.removeprefix("edge-")
        if number.isdecimal() and int(number) < len(edges):
            return int(number)
        return None

    def prefixed(self, prefix: str) -> list[str]:
        """Block hashes and edge addresses that start with ``prefix``."""
        return [h for h in [*self._by_hash, *self.state.edges] if h.startswith(prefix)]


def _names(genesis: dict[str, Any]) -> dict[str, str]:
    names = {address: f"edge-{i}" for i, address in enumerate(genesis["edges"])}
    names.update({address: f"validator-{i}" for i, address in enumerate(genesis["validators"])})
    names[genesis["publisher"]] = "publisher"
    return names


def _edge_point(state: LedgerState, edge: str) -> EdgePoint:
    record = state.edge_records[edge]
    balance = state.balances.get(edge)
    if balance is None:
        return EdgePoint(state.height, record.committed, record.accepted, record.dissent, record.withheld)
    return EdgePoint(state.height, record.committed, record.accepted, record.dissent, record.withheld,
                     balance.earned, balance.slashed, balance.balance)


def _note_experts(index: ChainIndex, tasks: list[TaskView]) -> None:
    state = index.state
    if not index.experts:
        index.experts = [ExpertHistory(e, [(0, cid)]) for e, cid in enumerate(state.expert_cids)]
    for history, cid in zip(index.experts, state.expert_cids, strict=True):
        if history.cids[-1][1] != cid:
            history.cids.append((state.height, cid))
    for task in tasks:
        for expert, count in enumerate(task.counts):
            index.experts[expert].activations.append((task.round, task.kind, count / task.samples))
        for decision in (*task.decisions, *task.updates):
            key = f"{decision.phase} {decision.status}"
            decided = index.experts[decision.expert].decided
            decided[key] = decided.get(key, 0) + 1


def _note_mentions(index: ChainIndex, block: Block) -> None:
    for position, tx in enumerate(block.transactions):
        index.transactions[tx_hash(tx)] = (block.header.height, position)
        task_id = tx.payload.get("task_id")
        for name, cid, required in named_objects(tx):
            index.mentions.setdefault(cid, []).append(Mention(
                block.header.height, position, tx.kind, tx.sender, name,
                task_id if isinstance(task_id, str) else None, required))


def build_index(rows: Iterable[tuple[Block, str, int]]) -> ChainIndex:
    """Replay ``rows`` (block, its hash, its size in bytes) from the genesis; LedgerError if one does not apply."""
    index = ChainIndex()
    for block, block_hash, size in rows:
        index.state = apply_block(index.state, block)
        if block.header.height == 0:
            index.names = _names(index.genesis)
        tasks = task_views(index.state, block, block_hash)
        index.tasks += tasks
        index._by_hash[block_hash] = block.header.height
        index.blocks.append(BlockView(block.header.height, block_hash, block.header, block.transactions,
                                      block.certificate, size, tuple(task.task_id for task in tasks)))
        for edge in index.state.edges:
            index.edge_history.setdefault(edge, []).append(_edge_point(index.state, edge))
        _note_experts(index, tasks)
        _note_mentions(index, block)
        index.quorum.observe(index.state)
    return index
