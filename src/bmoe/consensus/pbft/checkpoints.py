"""PBFT checkpoints and garbage collection.

Owns: every ``checkpoint_interval`` heights replicas sign CHECKPOINT(h, chain digest); ``q`` matching
ones make it stable, and every log entry at or below it is dropped (``retain_decided`` decided blocks
are kept below it to help laggards).

Must not know: the transport, the clock, what a payload means.
"""

from __future__ import annotations

from bmoe.consensus.engine import Reason, Rejected
from bmoe.consensus.pbft.core import ReplicaCore
from bmoe.consensus.pbft_messages import CheckpointMessage


class Checkpoints(ReplicaCore):
    """Stable checkpoints and the garbage collection they allow."""

    def _on_checkpoint(self, cp: CheckpointMessage, raw: bytes) -> None:
        if cp.height % self.config.checkpoint_interval != 0:
            raise Rejected(Reason.WRONG_HEIGHT, f"checkpoint at {cp.height} is not a checkpoint height")
        if not self.stable <= cp.height <= self.executed + self.config.window:
            raise Rejected(Reason.WRONG_HEIGHT, f"checkpoint at {cp.height}, stable {self.stable}")
        previous = self.checkpoint_votes.get(cp.height, {}).get(cp.sender)
        if previous is not None:
            reason = Reason.REPLAYED if previous.digest == cp.digest else Reason.EQUIVOCATION
            raise Rejected(reason, f"second checkpoint from {cp.sender} at {cp.height}")
        self.checkpoint_votes.setdefault(cp.height, {})[cp.sender] = cp
        self._check_stable(cp.height)

    def _check_stable(self, height: int) -> None:
        mine = self.digests_at.get(height)
        if mine is None or height <= self.stable:
            return
        matching = [cp for cp in self.checkpoint_votes.get(height, {}).values() if cp.digest == mine]
        if len(matching) < self.q:
            return
        self.stable = height
        self.stable_proof = tuple(sorted(matching, key=lambda cp: cp.sender))
        self._stats.events["stable_checkpoint"] += 1
        self._collect_garbage()

    def _collect_garbage(self) -> None:
        """Drop every log entry at or below the stable checkpoint (decided blocks: ``retain_decided`` more)."""
        s = self.stable
        before = len(self.slots)
        self.slots = {k: v for k, v in self.slots.items() if k[1] > s}
        self._stats.events["slots_collected"] += before - len(self.slots)
        self.seen = {h: v for h, v in self.seen.items() if h > s}
        self.checkpoint_votes = {h: v for h, v in self.checkpoint_votes.items() if h >= s}
        self.digests_at = {h: v for h, v in self.digests_at.items() if h >= s}
        self.verdicts = {k: v for k, v in self.verdicts.items() if k[0] > s}
        self.payloads = {d: v for d, v in self.payloads.items() if v[0] > s}
        keep_from = s - self.config.retain_decided
        for h in [h for h in self.decided if h <= keep_from]:
            self.decided_hashes.pop(self.decided.pop(h).payload_hash, None)
