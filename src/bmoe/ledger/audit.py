"""Audit: replay a chain from genesis and check everything it claims.

Checks, in chain order, stopping at the first failure and naming it: every block's stored hash,
height, previous-hash link, Merkle root, proof of work and proposer signature; every
transaction's signature; the replayed state machine (every acceptance must be what the rule
decides, every state root must match); and every object the chain names must be in the store
with bytes that match its CID. Objects the state depends on (gate, experts, tasks, activations,
accepted results, gradients) are required; the edges' own commitments outside the accepted
group are evidence, checked when present and counted when absent.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from bmoe.ledger.blocks import Block
from bmoe.ledger.chain_check import CertificateCheck, check_chain
from bmoe.ledger.chainstore import ChainStore
from bmoe.ledger.errors import LedgerError
from bmoe.ledger.state import LedgerState, apply_block
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


CertificateCheckFactory = Callable[[dict[str, Any]], CertificateCheck]


def audit(chain: ChainStore, store: BlobStore, min_difficulty: int | None = None,
          certificate_checks: CertificateCheckFactory | None = None) -> AuditReport:
    """Replay ``chain`` against ``store``; raise ChainIntegrityError / AuditFailure at the first fault.

    ``certificate_checks`` builds, from the genesis's ``consensus`` section, the check of each PBFT
    block's commit certificate (the ledger does not know the consensus engines' formats).
    """
    certificate_check = None
    if certificate_checks is not None and chain.height() >= 0:
        first = chain.block_at(0).transactions
        genesis = first[0].payload if first else {}
        section = genesis.get("consensus") if isinstance(genesis, dict) else None
        if isinstance(section, dict) and section.get("engine") == "pbft":
            certificate_check = certificate_checks(section)
    state = LedgerState()
    counts = {"objects": 0, "evidence": 0, "missing": 0, "pbft": 0}
    verified: set[str] = set()

    def on_block(block: Block, _hash: str) -> None:
        nonlocal state
        state = apply_block(state, block)
        counts["pbft"] += block.header.consensus == "pbft"
        for index, tx in enumerate(block.transactions):
            for field, cid, required in named_objects(tx):
                where = f"transaction {index} ({tx_hash(tx)[:16]}…) {field}"
                if cid in verified:
                    continue
                try:
                    present = store.has(cid)
                    if present and not store.verify(cid):
                        raise AuditFailure(f"{where}: object {cid} is corrupt (bytes do not match the CID)")
                except StorageError as err:
                    raise AuditFailure(f"{where}: {err}") from None
                if not present:
                    if required:
                        raise AuditFailure(f"{where}: object {cid} is missing from the store")
                    counts["missing"] += 1
                    continue
                verified.add(cid)
                counts["objects" if required else "evidence"] += 1

    report = check_chain(chain.iter_raw(), min_difficulty=min_difficulty, on_block=on_block,
                         certificate_check=certificate_check)
    return AuditReport(report.height, report.head_hash, report.blocks, report.transactions, report.signatures,
                       counts["objects"], counts["evidence"], counts["missing"], state, counts["pbft"])
