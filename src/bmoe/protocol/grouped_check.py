"""Re-deriving recorded groups from the stored objects: what the proposer, every re-executing
replica and ``bmoe audit`` compute alike under a comparison that records groups.

The ledger checks a grouped decision's structure only (``verify/phase.py``); it holds no tensors.
:func:`regroup` fetches one expert's committed answers from the store and groups them
(the comparison's ``group``, ``protocol/comparisons/``); :class:`GroupedDecisions` compares a block's
recorded groups, accepted values and dissenters' distances with that, and names the first that differs.

Must not know how blocks are sealed or replayed: it is handed the state after a decision was applied.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

from bmoe.ledger.blocks import Block
from bmoe.ledger.state import LedgerState, TaskState
from bmoe.ledger.transactions import Transaction
from bmoe.protocol.comparisons import tensor_checks
from bmoe.protocol.comparisons.grouping import Answer, Expected, Grouping
from bmoe.storage import BlobStore, StorageError, cid_of, deserialize_tensors
from bmoe.verify.acceptance import meets_rule
from bmoe.verify.comparison import Comparison

DISTANCE_RTOL = 1e-9  # recorded distances are float64 sums; another machine may round the last bits


def answers_of(store: BlobStore, comparison: Comparison, committed: Mapping[str, tuple[str, str]]) -> list[Answer]:
    """Each committing edge's answer. Edges that committed one digest share one answer's bytes: the first
    of their CIDs (in edge order) whose stored bytes are what the digest names, fetched once; None when
    none are (an edge repeating a digest under a CID of other bytes still committed that digest)."""
    by_digest: dict[str, list[tuple[str, str]]] = {}
    for edge, (digest, cid) in sorted(committed.items()):
        by_digest.setdefault(digest, []).append((edge, cid))
    answers = []
    for digest, edges in sorted(by_digest.items()):
        data = next((found for _, cid in edges if (found := _fetch(store, cid)) is not None
                     and comparison.matches(found, digest)), None)
        answers += [Answer(edge, digest, data) for edge, _ in edges]
    return answers


def _fetch(store: BlobStore, cid: str) -> bytes | None:
    try:
        return store.get(cid) if store.has(cid) else None
    except StorageError:
        return None


def expected_of(store: BlobStore, task: TaskState, phase: str, expert: int, num_classes: int) -> Expected:
    """What a comparable answer holds: a result of the routed rows, or weights like the base expert's."""
    if phase == "result":
        assert task.counts is not None
        return Expected("result", rows=task.counts[expert], classes=num_classes)
    return Expected.update_like(deserialize_tensors(store.get(task.update_bases[expert]))[0])


def regroup(store: BlobStore, comparison: Comparison, state: LedgerState, task: TaskState, phase: str,
            expert: int, edges: tuple[str, ...] | None = None) -> Grouping:
    """The grouping of ``expert``'s committed answers in ``phase``, from the stored objects: those of its
    assigned edges, or of ``edges`` (a dispute's sample, as it stood when it was disputed)."""
    num_classes = int(state.genesis["expert_spec"]["num_classes"])  # type: ignore[index]
    among = state.assigned_edges(expert, task) if edges is None else edges
    committed = {edge: c for edge, c in task.commitments[phase].get(expert, {}).items() if edge in among}
    return tensor_checks(comparison).group(answers_of(store, comparison, committed),
                                           expected_of(store, task, phase, expert, num_classes))


def diverged(state: LedgerState, task: TaskState, grouping: Grouping, expert: int, phase: str) -> str | None:
    """Why the round must fail rather than seal, or None: the edges whose answers are non-finite (of the
    right form), counted as one group, meet the acceptance rule. Under ``exact`` such edges agree bit for
    bit; on a mixed fleet their overflows differ in bytes but are the same divergence, not misbehaviour."""
    count = len(grouping.non_finite)
    if count == 0 or state.rule.name == "sole":
        return None
    others = [len([e for e in g.edges if e not in grouping.non_finite]) for g in grouping.groups]
    if not meets_rule(state.rule, count, len(state.assigned_edges(expert, task)), max(others, default=0)):
        return None
    return f"round diverged: {count} edges computed a non-finite {phase} for expert {expert}"


def accepted_object(comparison: Comparison, grouping: Grouping, committed: Mapping[str, tuple[str, str]],
                    phase: str) -> bytes:
    """The first group's accepted value (under ``tolerance`` its element-wise median), encoded."""
    digests = {edge: c[0] for edge, c in committed.items()}
    return tensor_checks(comparison).accepted(grouping, grouping.groups[0], digests, phase)


class GroupedDecisions:
    """Checks recorded grouped decisions and dissent distances against the store, one block at a time."""

    def __init__(self, store: BlobStore) -> None:
        self.store = store
        self._groupings: dict[tuple[str, str, int], Grouping] = {}

    def decisions_error(self, state: LedgerState, task: TaskState, phase: str,
                        entries: list[Mapping[str, Any]]) -> str | None:
        """Why a recorded decision's groups or accepted value are not what the objects give, or None.
        ``state`` is the state after the decisions were applied."""
        comparison = state.comparison
        if not comparison.records_groups:
            return None
        for entry in entries:
            expert = entry["expert"]
            grouping = regroup(self.store, comparison, state, task, phase, expert)
            self._groupings[(task.task_id, phase, expert)] = grouping
            stop = diverged(state, task, grouping, expert, phase)
            if stop is not None:
                return f"{stop}: the round must fail, not seal"
            recorded = [tuple(group) for group in entry["groups"]]
            if recorded != grouping.edges():
                return (f"expert {expert}: the recorded {phase} groups {_sizes(recorded)} differ from the groups "
                        f"the objects give {_sizes(grouping.edges())}")
            if entry["status"] == "accepted":
                data = accepted_object(comparison, grouping, task.commitments[phase][expert], phase)
                if cid_of(data) != entry["cid"] or comparison.key(data) != entry["digest"]:
                    return (f"expert {expert}: the accepted {phase} {entry['cid']} is not the first group's median "
                            f"({cid_of(data)})")
            if entry["status"] == "malformed" and grouping.groups[0].valid:
                return f"expert {expert}: the first {phase} group is a valid {phase}, marked malformed"
        return None

    def transaction_error(self, state: LedgerState, tx: Transaction) -> str | None:
        """What :meth:`decisions_error`, :meth:`records_error` or :meth:`dispute_error` finds in ``tx`` (an
        acceptance, an update acceptance, a misbehaviour record or a dispute; other kinds record no group),
        or None."""
        if not state.comparison.records_groups:
            return None
        task = state.tasks.get(str(tx.payload.get("task_id", "")))
        if task is None:
            return None
        if tx.kind in ("acceptance", "update_acceptance"):
            phase = "result" if tx.kind == "acceptance" else "update"
            return self.decisions_error(state, task, phase, tx.payload["decisions"])
        if tx.kind == "misbehaviour":
            return self.records_error(task, tx.payload["phase"], tx.payload["records"], tx.payload["edge"])
        if tx.kind == "dispute":
            return self.dispute_error(state, task, tx.payload["phase"], tx.payload["disputes"])
        return None

    def dispute_error(self, state: LedgerState, task: TaskState, phase: str,
                      entries: list[Mapping[str, Any]]) -> str | None:
        """Why a dispute's recorded groups of a sample are not what the sample's objects give, or None
        (the edges grouped are the recorded ones: those of the sample that had committed by then)."""
        for entry in entries:
            expert = entry["expert"]
            recorded = [tuple(group) for group in entry["groups"]]
            edges = tuple(edge for group in recorded for edge in group)
            measured = regroup(self.store, state.comparison, state, task, phase, expert, edges).edges()
            if recorded != measured:
                return (f"expert {expert}: the disputed sample's {phase} groups {_sizes(recorded)} differ from the "
                        f"groups the objects give {_sizes(measured)}")
        return None

    def records_error(self, task: TaskState, phase: str, records: list[Mapping[str, Any]], edge: str) -> str | None:
        """Why a dissent record's distance is not the measured one, or None."""
        for record in records:
            if record["reason"] != "dissent" or "distance" not in record:
                continue
            grouping = self._groupings.get((task.task_id, phase, record["expert"]))
            if grouping is None:
                return f"expert {record['expert']}: a distance recorded before its decision was re-derived"
            measured, claimed = grouping.distances.get(edge), record["distance"]
            if (measured is None) != (claimed is None) or (
                    measured is not None and not math.isclose(measured, claimed, rel_tol=DISTANCE_RTOL, abs_tol=0.0)):
                return (f"expert {record['expert']}: the recorded distance of edge {edge[:8]} ({claimed}) is not the "
                        f"measured {measured}")
        return None


def block_check(store: BlobStore) -> Callable[[LedgerState, Block], str | None]:
    """For ``bmoe audit``: a check of one applied block's grouped decisions and distances (``state``
    is the state after the block), naming the first transaction that differs."""
    def check(state: LedgerState, block: Block) -> str | None:
        if not state.comparison.records_groups:
            return None
        grouped = GroupedDecisions(store)
        for index, tx in enumerate(block.transactions):
            try:
                reason = grouped.transaction_error(state, tx)
            except StorageError as err:
                reason = f"cannot re-derive its groups: {err}"
            if reason is not None:
                return f"transaction {index} ({tx.kind}): {reason}"
        return None
    return check


def _sizes(groups: list[tuple[str, ...]]) -> str:
    """Groups as sizes and members: ``[3: a1b2c3d4 e5f60718 9a0b1c2d, 2: ...]``."""
    return "[" + ", ".join(f"{len(group)}: " + " ".join(edge[:8] for edge in group) for group in groups) + "]"
