"""A PBFT validator's re-execution of a language model's blocks, against its own copy of the ledger state.

A proposed block is judged as ``bmoe audit`` judges a sealed one: the ledger's state machine (signatures, senders,
nonces, the acceptance rule, misbehaviour evidence, the state root), every recorded group under a grouping
comparison (``protocol/grouped_check.py``), then the language model's replay (``protocol/lm/replay.py``): every
activation, aggregate, the loss, the output gradients and the trusted part's AdamW step, by CID. A round spans a
block per task, so the replay carries the open round from block to block; a proposal that is not sealed (a view
change voted its proposer out) leaves the replay past the head the next proposal builds on, and the replay is then
rebuilt from the blocks of that round it has judged (at most a round's tasks).

Must not know: consensus messages, edges, the disk layout of a run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from bmoe.ledger.blocks import Block, block_hash
from bmoe.ledger.errors import InvalidBlock
from bmoe.ledger.state import LedgerState, apply_block
from bmoe.protocol.grouped_check import block_check
from bmoe.protocol.lm.replay import LMReplay
from bmoe.protocol.lm.round import lm_task
from bmoe.storage import BlobStore


@dataclass(frozen=True)
class _Replayed:
    """A block this validator replayed: where it sits and the block that began the round open after it."""

    block: Block
    prev_hash: str
    height: int
    round_start: str | None  # the hash of the block holding the open round's layer-0 forward task; None: no round


class LMReexecutor:
    """Judges a language model's blocks in chain order (:class:`~bmoe.protocol.pbft_sealing.BlockReexecutor`).
    ``lr_of``: the learning rate of a round, as the settings the genesis's hash records give it."""

    def __init__(self, store: BlobStore, lr_of: Callable[[int], float]) -> None:
        self.store = store
        self.lr_of = lr_of
        self.grouped = block_check(store)
        self.replay = LMReplay(store, lr_of)
        self.at: str | None = None  # the block the replay has replayed up to (None: rebuild before the next block)
        self.replayed: dict[str, _Replayed] = {}  # by block hash, the blocks a rebuild may need

    def check(self, state: LedgerState, block: Block) -> LedgerState:
        """The state after ``block`` on top of ``state``, or ``InvalidBlock`` naming the first thing that differs."""
        after = apply_block(state, block)  # the state machine and the state root
        height = block.header.height
        reason = self.grouped(after, block)
        if reason is not None:
            raise InvalidBlock(height, reason)
        replay = self._replay_after(state.head)
        self.at = None  # until the block replays in full, the replay is past nothing
        error = replay.block_error(block)
        if error is not None:
            raise InvalidBlock(height, error)
        found = block_hash(block)
        self.at = found
        self.replayed[found] = _Replayed(block, state.head, height, self._round_start(block, found, state.head))
        self._forget_before(height)
        return after

    def _round_start(self, block: Block, found: str, prev_hash: str) -> str | None:
        if not self.replay.in_round:
            return None
        for tx in block.transactions:
            task = lm_task(tx.payload.get("task_id", "")) if tx.kind == "activation" else None
            if task is not None and task[2:] == ("f", 0):
                return found
        before = self.replayed.get(prev_hash)
        return before.round_start if before is not None else None

    def _replay_after(self, head: str) -> LMReplay:
        """The replay with every block up to ``head`` replayed: the live one, or one rebuilt from the blocks of
        the round open at ``head``."""
        if self.at == head:
            return self.replay
        self.replay = LMReplay(self.store, self.lr_of)
        target, before = head, self.replayed.get(head)
        start = before.round_start if before is not None else None  # None: no round open (block 0, a closed round)
        blocks: list[Block] = []
        while start is not None:
            entry = self.replayed[head]
            blocks.append(entry.block)
            if head == start:
                break
            head = entry.prev_hash
        for block in reversed(blocks):
            error = self.replay.block_error(block)
            assert error is None, f"a block this validator replayed before does not replay again: {error}"
        self.at = target
        return self.replay

    def _forget_before(self, height: int) -> None:
        """Keep the blocks a rebuild may still need: those of the rounds open at the two newest heights."""
        recent = [entry for entry in self.replayed.values() if entry.height >= height - 2]
        starts = [self.replayed[e.round_start].height for e in recent
                  if e.round_start is not None and e.round_start in self.replayed]
        floor = min([height - 2, *starts])
        self.replayed = {h: e for h, e in self.replayed.items() if e.height >= floor}
