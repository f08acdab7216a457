"""Auditing a chain sealed on Ethereum: the chain of record is the one the contract sealed.

Owns :class:`ContractChain`, the rows ``ledger/audit.audit`` replays, read from the contract alone plus the
store: for each height the block hash, state root and block CID the contract records, the block's bytes
fetched from the store under that CID (verified against it), and the certificate its logs give (the
``sealBlock`` transaction and its Ethereum block). On top of the replay, :func:`records_check` checks that
what each ``sealBlock`` posted (the logs) is exactly what the block says (``records.block_records`` on the
state before it), and :func:`state_error` that the contract's own state (expert and gate CIDs, balances,
edge records) is the replayed state's. A local chain file is then only a copy: it must be a prefix of the
contract's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from bmoe.ethereum.backend import LedgerMismatch, sealed_block
from bmoe.ethereum.contract import LedgerContract
from bmoe.ethereum.errors import EthereumError
from bmoe.ethereum.logs import SealedBlockLog, sealed_blocks
from bmoe.ethereum.records import block_records
from bmoe.ledger.audit import AuditFailure
from bmoe.ledger.blocks import Block, block_to_bytes
from bmoe.ledger.state import LedgerState
from bmoe.storage import BlobStore

BlockCheck = Callable[[LedgerState, Block], "str | None"]


class ContractChain:
    """The contract's sealed blocks as ``(height, hash, bytes)`` rows, bytes from ``store``."""

    def __init__(self, contract: LedgerContract, store: BlobStore) -> None:
        self.contract = contract
        self.store = store
        self.logs: dict[int, SealedBlockLog] = {log.records.header.height: log for log in sealed_blocks(contract)}

    def iter_raw(self) -> Iterator[tuple[int, str, bytes]]:
        height, _ = self.contract.head()
        for at in range(height + 1):
            try:
                recorded_hash, block = sealed_block(self.contract, self.store, at, self.logs)
            except LedgerMismatch as err:
                raise AuditFailure(str(err)) from None
            yield at, recorded_hash, block_to_bytes(block)


def records_check(chain: ContractChain, then: BlockCheck | None) -> BlockCheck:
    """A block check that, after ``then``, requires each block's posted records to be what the block says."""
    previous = [LedgerState()]

    def check(state: LedgerState, block: Block) -> str | None:
        reason = then(state, block) if then is not None else None
        if reason is not None:
            return reason
        height = block.header.height
        try:
            records, _ = block_records(previous[0], block)
        except EthereumError as err:
            return f"the contract's records cannot be derived: {err}"
        previous[0] = state
        if records != chain.logs[height].records:
            return "the records its sealBlock posted to the contract differ from what the block holds"
        return None

    return check


def state_error(contract: LedgerContract, state: LedgerState) -> str | None:
    """Why the contract's own state differs from the replayed ``state``, or None."""
    if contract.expert_cids() != state.expert_cids:
        return "the contract's expert CIDs differ from the replayed ledger's"
    if contract.gate_cid() != state.gate_cid:
        return "the contract's gate CID differs from the replayed ledger's"
    for edge, record in sorted(state.edge_records.items()):
        if contract.edge_record(edge) != record:
            return f"the contract's record of edge {edge[:8]} differs from the replayed ledger's"
    for edge, balance in sorted(state.balances.items()):
        if contract.balance(edge) != balance:
            return f"the contract's balance of edge {edge[:8]} differs from the replayed ledger's"
    return None


def contract_of(rpc_url: str, section: Mapping[str, Any]) -> LedgerContract:
    """The contract a genesis's ``ethereum`` section names, read-only and checked."""
    return LedgerContract.connect(rpc_url, int(section["chain_id"]), str(section["contract"]))
