"""What the explorer's pages show, as plain data derived from the replayed chain.

Owns the shapes only: a block, a task with each expert's decision (its groups, supporters and
dissenters with their evidence), an edge's record after each block, a mention of an object by CID.
Nothing here reads a file or renders a page.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bmoe.ledger.blocks import BlockHeader
from bmoe.ledger.transactions import Transaction


@dataclass(frozen=True)
class Commit:
    """What one edge committed for one expert in one phase."""

    edge: str
    digest: str
    cid: str


@dataclass(frozen=True)
class Accusation:
    """A misbehaviour record against ``edge``: ``dissent`` with the digest it committed as evidence (and,
    under a grouping comparison, its distance from the accepted value), or ``withheld`` (no evidence)."""

    edge: str
    reason: str
    evidence: str | None
    evidence_cid: str | None  # the committed object behind the evidence digest
    distance: float | None = None


@dataclass(frozen=True)
class ExpertDecision:
    """The validators' decision for one expert of one task in one phase (``result`` or ``update``)."""

    expert: int
    phase: str
    status: str  # accepted | no_quorum | malformed
    digest: str | None
    cid: str | None  # the accepted value's CID (None unless accepted)
    groups: tuple[tuple[str, ...], ...] | None  # under a grouping comparison: the recorded groups
    supporters: tuple[str, ...]
    dissenters: tuple[str, ...]
    missing: tuple[str, ...]
    commits: tuple[Commit, ...]
    accusations: tuple[Accusation, ...]
    disputed: bool = False  # escalated from its sample to every edge

    @property
    def accepted(self) -> bool:
        return self.status == "accepted"


@dataclass(frozen=True)
class TaskView:
    """One task (one round) as its block recorded it."""

    task_id: str
    kind: str  # train | infer
    round: int
    samples: int
    height: int
    block_hash: str
    data_cid: str
    gate_cid: str  # the gate that evaluated it
    activation_cid: str
    counts: tuple[int, ...]  # samples routed to each expert
    output_cid: str | None
    loss: float | None  # training: the loss the gate update records
    new_gate_cid: str | None
    gradient_cids: dict[int, str]
    decisions: tuple[ExpertDecision, ...]  # the result phase, one per activated expert
    updates: tuple[ExpertDecision, ...]  # the update phase (training), one per accepted expert

    @property
    def rejected(self) -> tuple[ExpertDecision, ...]:
        return tuple(d for d in (*self.decisions, *self.updates) if not d.accepted)

    @property
    def accusations(self) -> int:
        return sum(len(d.accusations) for d in (*self.decisions, *self.updates))


@dataclass(frozen=True)
class BlockView:
    height: int
    hash: str
    header: BlockHeader
    transactions: tuple[Transaction, ...]
    certificate: dict[str, Any] | None
    size: int  # bytes of the block's canonical encoding
    task_ids: tuple[str, ...]


@dataclass(frozen=True)
class EdgePoint:
    """An edge's record (and, with economics, its account) after the block at ``height``."""

    height: int
    committed: int
    accepted: int
    dissent: int
    withheld: int
    earned: int | None = None
    slashed: int | None = None
    balance: int | None = None


@dataclass(frozen=True)
class Mention:
    """Where the ledger names an object: transaction ``tx_index`` of block ``height``, field ``name``."""

    height: int
    tx_index: int
    kind: str
    sender: str
    name: str
    task_id: str | None
    required: bool  # audit requires the object (state depends on it), else a commitment checked if present


@dataclass
class ExpertHistory:
    """One expert's CIDs over the chain, and what each task decided for it."""

    expert: int
    cids: list[tuple[int, str]] = field(default_factory=list)  # (height, CID) each time it changed
    activations: list[tuple[int, str, float]] = field(default_factory=list)  # (round, kind, routed share)
    decided: dict[str, int] = field(default_factory=dict)  # "result accepted" -> count, ...
