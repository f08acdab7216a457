"""Audit: replay a chain from genesis and check everything it claims.

Checks, in chain order, stopping at the first failure and naming it: every block's stored hash,
height, previous-hash link, Merkle root and proposer signature; its seal against the rules the
genesis fixes (engine, enrolled validators, difficulty, PBFT commit certificates: see
``seal_rules``), never against a header's own claims or a file beside the chain; every
transaction's signature; the replayed state machine (every acceptance must be what the rule
decides, every state root must match); and every object the chain names must be in the store
with bytes that match its CID. Objects the state depends on (gate, experts, tasks, activations,
accepted results, gradients) are required, and so is the evidence behind every misbehaviour
record (the accused edge's committed result); other commitments outside the accepted group are
checked when present and counted when absent.

A chain proves only that it is self-consistent; what it is anchored to says whose chain it is.
An empty chain is a fault, and :class:`Anchors` let the caller require block hashes recorded
elsewhere (``--expect-head``, the head a run recorded in ``metrics.json``) and genesis fields
(the config hash, the participants' addresses), so a truncated or substituted chain fails.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from bmoe.ledger.blocks import GENESIS_PREV_HASH, Block
from bmoe.ledger.chain_check import stored_blocks
from bmoe.ledger.errors import ChainIntegrityError, LedgerError, short_hash
from bmoe.ledger.judge import check_then_apply
from bmoe.ledger.seal_rules import SealRules
from bmoe.ledger.state import LedgerState, TaskState
from bmoe.ledger.transactions import Transaction, tx_hash
from bmoe.storage import BlobStore, StorageError


class AuditFailure(LedgerError):
    """The first thing an audit found wrong, named precisely."""


@dataclass
class AuditReport:
    height: int
    head_hash: str | None
    blocks: int
    transactions: int
    signatures: int
    objects_checked: int
    evidence_checked: int
    evidence_missing: int
    state: LedgerState
    pbft_blocks: int = 0  # blocks sealed by a PBFT commit certificate (checked)
    seal_rules: str = ""  # what the genesis fixes, in words
    anchored_to: list[str] = field(default_factory=list)  # each anchor that held, in words
    evidence_required: int = 0  # evidence objects behind misbehaviour records (all present and intact)
    block_hashes: list[str] = field(default_factory=list)  # by height
    unanchored: list[str] = field(default_factory=list)  # anchors the caller looked for and did not find
    generation_chunks: int = 0  # verified generation's chunks whose calls were re-computed (run/audit.py)
    generation_calls: int = 0

    @property
    def genesis_hash(self) -> str:
        return self.block_hashes[0]


def named_objects(tx: Transaction) -> Iterator[tuple[str, str, bool]]:
    """(field, CID, required) for every CID a transaction names."""
    payload = tx.payload
    if tx.kind == "genesis":
        yield "gate_cid", payload["gate_cid"], True
        for i, cid in enumerate(payload["expert_cids"]):
            yield f"expert_cids[{i}]", cid, True
    elif tx.kind == "task":
        yield "data_cid", payload["data_cid"], True
    elif tx.kind == "activation":
        yield "activation_cid", payload["activation_cid"], True
    elif tx.kind in ("commitment", "expert_update"):
        entries = payload["results"] if tx.kind == "commitment" else payload["updates"]
        for entry in entries:
            yield f"expert {entry['expert']} cid", entry["cid"], False
    elif tx.kind in ("acceptance", "update_acceptance"):
        if tx.kind == "acceptance":
            yield "output_cid", payload["output_cid"], True
        for entry in payload["decisions"]:
            if entry["cid"] is not None:
                yield f"expert {entry['expert']} cid", entry["cid"], True
    elif tx.kind == "gate_update":
        yield "gate_cid", payload["gate_cid"], True
        for expert, cid in sorted(payload["gradient_cids"].items()):
            yield f"gradient_cids[{expert}]", cid, True
    elif tx.kind == "generation_chunk":  # the records, and each dispute's outputs (the evidence)
        yield "records", payload["records"], True
        for entry in payload["disputes"]:
            yield f"slot {entry['slot']} accepted", entry["accepted"], True
            for edge, commitment in sorted(entry["commitments"].items()):
                yield f"slot {entry['slot']} {edge[:12]} outputs", commitment["outputs"], True


@dataclass(frozen=True)
class BlockAnchor:
    """A block the chain must contain: its hash, optionally its height, and where the hash came from."""

    block_hash: str
    height: int | None
    source: str


@dataclass(frozen=True)
class Anchors:
    """What the audited chain must agree with beyond itself.

    ``blocks``: hashes recorded elsewhere (the user's ``--expect-head``, a run's ``metrics.json``);
    ``genesis``: fields the genesis payload must hold (the config hash, the participants' addresses)
    with the source they were read from.
    """

    blocks: tuple[BlockAnchor, ...] = ()
    genesis: Mapping[str, Any] = field(default_factory=dict)
    genesis_source: str = ""


def evidence_objects(task: TaskState, grouped: bool = False) -> dict[str, str]:
    """CID -> description for the committed result behind each misbehaviour record of ``task``.

    A ``withheld`` record has no object; a ``dissent`` record's evidence is the digest the edge
    committed, and the object under that commitment's CID is what proves it. Under a comparison that
    records groups (``grouped``), every decided answer is evidence: the groups are re-derived from them.
    """
    found: dict[str, str] = {}
    if grouped:
        for phase, experts in task.verdicts.items():
            for expert in sorted(experts):
                for edge, (_, cid) in sorted(task.commitments[phase].get(expert, {}).items()):
                    found.setdefault(cid, f"an answer the recorded groups were derived from (edge {short_hash(edge)}, "
                                          f"task {task.task_id}, expert {expert}, {phase})")
    for edge, expert, phase in sorted(task.accusations):
        committed = task.commitments[phase].get(expert, {}).get(edge)
        if committed is not None:
            found.setdefault(committed[1], f"evidence of the misbehaviour record against edge {short_hash(edge)} "
                                           f"(task {task.task_id}, expert {expert}, {phase})")
    return found


def _check_genesis_anchor(genesis: Mapping[str, Any], anchors: Anchors) -> str | None:
    for name, expected in sorted(anchors.genesis.items()):
        if genesis.get(name) != expected:
            return (f"the genesis's {name} differs from {anchors.genesis_source}: a chain of another run, "
                    "or a file edited")
    return None


class ChainRows(Protocol):
    """Where the audited blocks come from: a ``ChainStore``, or the chain an Ethereum contract sealed."""

    def iter_raw(self) -> Iterator[tuple[int, str, bytes]]: ...


BlockCheck = Callable[[LedgerState, Block], str | None]  # why an applied block's objects contradict it, or None


def audit(chain: ChainRows, store: BlobStore, anchors: Anchors | None = None,
          block_check: BlockCheck | None = None) -> AuditReport:
    """Replay ``chain`` against ``store``; raise ChainIntegrityError / AuditFailure at the first fault.

    Every block's seal is checked by the engine the genesis names (``ledger/sealing``).
    ``anchors``: block hashes and genesis fields the chain must agree with.
    ``block_check``: what the objects say of each applied block beyond the state machine (under a
    comparison that records groups: the groups, accepted values and distances, re-derived).
    """
    anchors = anchors if anchors is not None else Anchors()
    state = LedgerState()
    rules: SealRules | None = None
    transactions = signatures = 0
    counts = {"objects": 0, "evidence": 0, "missing": 0, "pbft": 0, "required_evidence": 0}
    verified: set[str] = set()
    hashes: list[str] = []  # by height

    def check_object(where: str, cid: str, required: bool, why: str) -> None:
        try:
            present = store.has(cid)
            if present and not store.verify(cid):
                raise AuditFailure(f"{where}: object {cid} is corrupt (bytes do not match the CID){why}")
        except StorageError as err:
            raise AuditFailure(f"{where}: {err}") from None
        if not present:
            if required:
                raise AuditFailure(f"{where}: object {cid} is missing from the store{why}")
            counts["missing"] += 1
            return
        verified.add(cid)

    def on_block(block: Block, block_hash: str) -> None:
        if block.header.height == 0 and state.genesis is not None:
            reason = _check_genesis_anchor(state.genesis, anchors)
            if reason is not None:
                raise AuditFailure(reason)
        hashes.append(block_hash)
        counts["pbft"] += block.header.consensus == "pbft"
        evidence: dict[str, str] = {}
        for task in state.tasks.values():
            evidence.update(evidence_objects(task, state.comparison.records_groups))
        for index, tx in enumerate(block.transactions):
            for name, cid, required in named_objects(tx):
                why = evidence.pop(cid, None)
                if cid not in verified:
                    check_object(f"transaction {index} ({tx_hash(tx)[:16]}…) {name}", cid,
                                 required or why is not None, f" ({why})" if why else "")
                    if cid not in verified:  # an absent commitment that nothing accuses: counted
                        continue
                    counts["objects" if required else "evidence"] += 1
                counts["required_evidence"] += why is not None
        reason = block_check(state, block) if block_check is not None else None
        if reason is not None:
            raise AuditFailure(reason)

    for block in stored_blocks(chain.iter_raw()):
        height = block.header.height
        try:  # the one check-then-apply every node judges blocks by, the seal by the genesis's rules
            judged = check_then_apply(state, hashes[-1] if hashes else GENESIS_PREV_HASH, rules, block)
            state, rules = judged.state, judged.rules
            on_block(block, judged.block_hash)
        except ChainIntegrityError:
            raise
        except LedgerError as exc:
            raise ChainIntegrityError(height, str(exc)) from exc
        transactions += len(block.transactions)
        signatures += judged.signatures
    if not hashes:
        raise AuditFailure("the chain is empty: no genesis block (rows deleted, or a write-ahead log lost?)")
    heights = {block_hash: height for height, block_hash in enumerate(hashes)}
    anchored = [f"genesis block {hashes[0]}"]
    if anchors.genesis:
        anchored.append(f"genesis fields {', '.join(sorted(anchors.genesis))} from {anchors.genesis_source}")
    for anchor in anchors.blocks:
        found = heights.get(anchor.block_hash)
        if found is None:
            raise AuditFailure(f"block {short_hash(anchor.block_hash)} from {anchor.source} is not in the chain "
                               f"(head {short_hash(hashes[-1])} at height {len(hashes) - 1}): "
                               "the chain was truncated or replaced")
        if anchor.height is not None and anchor.height != found:
            raise AuditFailure(f"block {short_hash(anchor.block_hash)} from {anchor.source} is at height {found}, "
                               f"not {anchor.height}")
        anchored.append(f"block {anchor.block_hash} at height {found} from {anchor.source}")
    assert rules is not None
    return AuditReport(len(hashes) - 1, hashes[-1], len(hashes), transactions, signatures,
                       counts["objects"], counts["evidence"], counts["missing"], state, counts["pbft"],
                       seal_rules=rules.describe(), anchored_to=anchored,
                       evidence_required=counts["required_evidence"], block_hashes=hashes)
