"""Hand-built enrolments and records for the contract's rule tests: five edges, two experts, funded accounts.

The template round (:func:`template_round`) is a training round every rule accepts: expert 0's result is
agreed by edges 1-4 (digest A) against edge 5 (B), expert 1's by all five, both updates by all five; edge 5
is recorded dissenting on expert 0. Tests change one thing in it and check the contract's reason.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Sequence

from eth_account.signers.local import LocalAccount

from bmoe.ethereum.accounts import account_from_key, derive_eth_account
from bmoe.ethereum.anvil import DEV_CHAIN_ID, DEV_KEY, Anvil
from bmoe.ethereum.cids import NO_CID, RAW, ChainCid, cid_to_chain
from bmoe.ethereum.contract import LedgerContract
from bmoe.ethereum.node import open_node
from bmoe.ethereum.records import (
    KINDS,
    PHASES,
    REASONS,
    STATUSES,
    ZERO32,
    BlockRecords,
    CommitmentRecord,
    DecisionRecord,
    Enrolment,
    MisbehaviourRecord,
    RoundRecord,
    SealHeader,
)
from bmoe.ethereum.sender import SentTransaction, TransactionSender, fund

EDGES = tuple(bytes([index]) * 32 for index in range(1, 6))  # edge i is EDGES[i - 1]; ascending
GATE = (b"\x90" * 32, RAW)
NEW_GATE = (b"\x91" * 32, RAW)
EXPERTS = ((b"\xe0" * 32, RAW), (b"\xe1" * 32, RAW))
RESULT, UPDATE = PHASES["result"], PHASES["update"]
ACCEPTED, NO_QUORUM, MALFORMED = STATUSES["accepted"], STATUSES["no_quorum"], STATUSES["malformed"]
DISSENT, WITHHELD = REASONS["dissent"], REASONS["withheld"]
ETHER = 10**18


def digest(label: str) -> bytes:
    return hashlib.sha256(label.encode()).digest()


def cid(label: str) -> ChainCid:
    return digest("object " + label), RAW


def dev_sender(node: Anvil) -> TransactionSender:
    """Transactions from anvil's funded dev account."""
    return TransactionSender(open_node(node.url, DEV_CHAIN_ID), account_from_key(DEV_KEY), DEV_CHAIN_ID)


def funded_account(node: Anvil, name: str, ether: int = 10) -> LocalAccount:
    """A fresh account derived from ``name``, funded from anvil's dev account."""
    account = derive_eth_account(4242, name)
    fund(dev_sender(node), [account.address], ether * ETHER)
    return account


def enrolment(validators: Sequence[str], **changes: object) -> Enrolment:
    base = Enrolment(validators=tuple(validators), edges=EDGES, stakes=(0,) * len(EDGES), gate=GATE, experts=EXPERTS,
                     quorum=(1, 2, True), exact=True)
    return dataclasses.replace(base, **changes)


def commit(edge: int, expert: int, phase: int, label: str) -> CommitmentRecord:
    """Edge ``edge`` (1-5) commits the object ``label`` for ``expert`` in ``phase``."""
    return CommitmentRecord(expert, phase, EDGES[edge - 1], digest(label), cid(label))


def accept(expert: int, phase: int, label: str, supporters: Sequence[int], assigned: int = 5) -> DecisionRecord:
    return DecisionRecord(expert, phase, ACCEPTED, digest(label), cid(label), assigned,
                          tuple(EDGES[edge - 1] for edge in supporters))


def dissent(edge: int, expert: int, phase: int, label: str) -> MisbehaviourRecord:
    return MisbehaviourRecord(expert, phase, EDGES[edge - 1], DISSENT, digest(label))


def withheld(edge: int, expert: int, phase: int) -> MisbehaviourRecord:
    return MisbehaviourRecord(expert, phase, EDGES[edge - 1], WITHHELD, ZERO32)


def round_record(task: str, kind: str = "train", gate: ChainCid = GATE, new_gate: ChainCid = NEW_GATE) -> RoundRecord:
    return RoundRecord(digest("task " + task), KINDS[kind], cid("activation " + task), digest("counts " + task), gate,
                       new_gate if kind == "train" else NO_CID)


def template_round(task: str, gate: ChainCid = GATE) -> dict[str, object]:
    """The records of an accepted training round (everything but the header)."""
    return {
        "round": round_record(task, gate=gate),
        "commitments": (*(commit(edge, 0, RESULT, "A") for edge in (1, 2, 3, 4)), commit(5, 0, RESULT, "B"),
                        *(commit(edge, 1, RESULT, "C") for edge in (1, 2, 3, 4, 5)),
                        *(commit(edge, 0, UPDATE, "D") for edge in (1, 2, 3, 4, 5)),
                        *(commit(edge, 1, UPDATE, "E") for edge in (1, 2, 3, 4, 5))),
        "decisions": (accept(0, RESULT, "A", (1, 2, 3, 4)), accept(1, RESULT, "C", (1, 2, 3, 4, 5)),
                      accept(0, UPDATE, "D", (1, 2, 3, 4, 5)), accept(1, UPDATE, "E", (1, 2, 3, 4, 5))),
        "misbehaviours": (dissent(5, 0, RESULT, "B"),),
    }


class Chain:
    """Successive blocks of one contract: the next header (height, parent), sealed or only built."""

    def __init__(self, ledger: LedgerContract) -> None:
        self.ledger = ledger
        self.height, head = ledger.head()
        self.head = bytes.fromhex(head)

    def block(self, **records: object) -> BlockRecords:
        """The next block with ``records`` (keywords of :class:`BlockRecords`; ``round`` None by default)."""
        height = self.height + 1
        header = SealHeader(height, self.head, digest(f"block {height} {records}"), digest(f"root {height}"),
                            cid(f"block {height}"))
        return BlockRecords(header, **{"round": None, **records})  # type: ignore[arg-type]

    def template(self, task: str) -> dict[str, object]:
        """:func:`template_round` from the contract's current gate."""
        return template_round(task, gate=cid_to_chain(self.ledger.gate_cid()))

    def seal(self, block: BlockRecords, ledger: LedgerContract | None = None) -> SentTransaction:
        sent = (ledger or self.ledger).seal_block(block)
        self.height, self.head = block.header.height, block.header.block_hash
        return sent
