"""Every sealed block and its records, read back from the contract's events alone (what an auditor lists).

Owns decoding the contract's logs, from Ethereum block 0 to the latest, into the same
:class:`~bmoe.ethereum.records.BlockRecords` that were posted, one per sealed height, with where each was
sealed (validator account, transaction, Ethereum block) and what each misbehaviour record slashed. An
auditor rebuilds the same records from the bmoe blocks (fetched from the store by ``block_cid``) with
:func:`~bmoe.ethereum.records.block_records` and compares.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from web3.types import EventData

from bmoe.ethereum.cids import NO_CID
from bmoe.ethereum.contract import LedgerContract
from bmoe.ethereum.errors import EthereumError
from bmoe.ethereum.records import (
    KINDS,
    BlockRecords,
    CommitmentRecord,
    DecisionRecord,
    DisputeRecord,
    MisbehaviourRecord,
    RoundRecord,
    SealHeader,
)
from bmoe.recursion import restore_recursion_limit

restore_recursion_limit()  # eth-account raised it at import: see bmoe/recursion.py

LOG_SPAN = 10_000  # Ethereum blocks per eth_getLogs request (public nodes cap the range)


@dataclass(frozen=True)
class SealedBlockLog:
    """One sealed bmoe block as the logs tell it."""

    records: BlockRecords
    validator: str  # the Ethereum account that sealed it
    transaction: str  # 0x hash of the sealBlock transaction
    eth_block: int
    slashed: tuple[int, ...]  # per misbehaviour record, what it took from the edge's balance


@dataclass
class _Pending:
    """The logs of one height, gathered until its BlockSealed."""

    round: dict[str, Any] | None = None
    gate_update: tuple[bytes, int] = NO_CID
    commitments: list[CommitmentRecord] = field(default_factory=list)
    disputes: list[DisputeRecord] = field(default_factory=list)
    decisions: list[DecisionRecord] = field(default_factory=list)
    misbehaviours: list[MisbehaviourRecord] = field(default_factory=list)
    slashed: list[int] = field(default_factory=list)


def _events(ledger: LedgerContract, span: int) -> Iterator[EventData]:
    """The contract's decoded events in chain order."""
    decoders = {}
    for event in ledger.contract.events:
        instance = event()
        decoders[bytes(ledger.web3.keccak(text=instance.abi_element_identifier))] = instance
    latest = int(ledger.web3.eth.block_number)
    for start in range(0, latest + 1, span):
        logs = ledger.web3.eth.get_logs({"address": ledger.contract.address, "fromBlock": start,
                                         "toBlock": min(latest, start + span - 1)})
        for log in logs:
            decoder = decoders.get(bytes(log["topics"][0]))
            if decoder is None:
                raise EthereumError(f"log {log['logIndex']} of Ethereum block {log['blockNumber']} is no event of "
                                    "bmoe's ledger contract")
            yield decoder.process_log(log)


def sealed_blocks(ledger: LedgerContract, span: int = LOG_SPAN) -> list[SealedBlockLog]:
    """Every block the contract sealed, in height order, with its records, from its events."""
    sealed: list[SealedBlockLog] = []
    pending: dict[int, _Pending] = {}
    for event in _events(ledger, span):
        args, name = event["args"], event["event"]
        found = pending.setdefault(int(args["height"]), _Pending())
        if name == "TaskRecorded":
            found.round = dict(args)
        elif name == "GateUpdated":
            found.gate_update = (bytes(args["cid"]), int(args["cid_codec"]))
        elif name == "Committed":
            found.commitments.append(CommitmentRecord(args["expert"], args["phase"], bytes(args["edge"]),
                                                      bytes(args["digest"]), (bytes(args["cid"]), args["cid_codec"])))
        elif name == "Disputed":
            found.disputes.append(DisputeRecord(args["expert"], args["phase"]))
        elif name == "Decided":
            found.decisions.append(DecisionRecord(
                args["expert"], args["phase"], args["status"], bytes(args["digest"]),
                (bytes(args["cid"]), args["cid_codec"]), args["assigned"],
                tuple(bytes(edge) for edge in args["supporters"])))
        elif name == "Misbehaved":
            found.misbehaviours.append(MisbehaviourRecord(args["expert"], args["phase"], bytes(args["edge"]),
                                                          args["reason"], bytes(args["evidence"])))
            found.slashed.append(int(args["slashed"]))
        elif name == "BlockSealed":
            sealed.append(_sealed(event, pending.pop(int(args["height"]))))
    return sealed


def _sealed(event: EventData, found: _Pending) -> SealedBlockLog:
    args = event["args"]
    header = SealHeader(int(args["height"]), bytes(args["parent_hash"]), bytes(args["block_hash"]),
                        bytes(args["state_root"]), (bytes(args["block_cid"]), int(args["block_cid_codec"])))
    task = found.round
    round_record = None if task is None else RoundRecord(
        bytes(task["task"]), int(task["kind"]), (bytes(task["activation_cid"]), int(task["activation_cid_codec"])),
        bytes(task["counts_hash"]), (bytes(task["activation_gate"]), int(task["activation_gate_codec"])),
        found.gate_update if int(task["kind"]) == KINDS["train"] else NO_CID)
    records = BlockRecords(header, round_record, tuple(found.commitments), tuple(found.disputes),
                           tuple(found.decisions), tuple(found.misbehaviours))
    return SealedBlockLog(records, str(args["validator"]).lower(), "0x" + bytes(event["transactionHash"]).hex(),
                          int(event["blockNumber"]), tuple(found.slashed))
