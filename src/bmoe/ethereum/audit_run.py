"""``bmoe audit`` of a run sealed on Ethereum: replay the contract's chain, then hold the local copy to it.

Owns the sequence: connect read-only to the contract the genesis names (chain id and code checked), replay
the chain it sealed (``ethereum.audit.ContractChain``) with every check of ``ledger/audit`` plus the posted
records, compare the contract's state with the replayed one, and require the run directory's chain file
to be a prefix of the contract's (a local block the contract never sealed, or another block at a height,
is a fault), each of its rows read as the plain audit reads them (``ledger.chain_check.read_row``:
the stored height and hash columns must be the block's own).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bmoe.credentials import without_credentials
from bmoe.ethereum.audit import ContractChain, contract_of, records_check, state_error
from bmoe.ledger.audit import Anchors, AuditFailure, AuditReport, BlockCheck, audit
from bmoe.ledger.chain_check import read_row
from bmoe.ledger.chainstore import ChainStore
from bmoe.ledger.errors import ChainIntegrityError
from bmoe.storage import BlobStore


def audit_on_contract(rpc_url: str, section: Mapping[str, Any], local: ChainStore, store: BlobStore,
                      anchors: Anchors, block_check: BlockCheck | None) -> AuditReport:
    contract = contract_of(rpc_url, section)
    chain = ContractChain(contract, store)
    report = audit(chain, store, anchors, records_check(chain, block_check))
    reason = state_error(contract, report.state)
    if reason is not None:
        raise AuditFailure(reason)
    copied = 0
    for height, stored_hash, data in local.iter_raw():
        try:
            _, digest = read_row(height, stored_hash, data)
        except ChainIntegrityError as err:
            raise AuditFailure(f"the run directory's chain: {err}") from None
        if height >= len(report.block_hashes):
            raise AuditFailure(f"the run directory's chain holds block {height}, which contract {contract.address} "
                               "never sealed")
        if digest != report.block_hashes[height]:
            raise AuditFailure(f"the run directory's block {height} is not the one contract {contract.address} "
                               "sealed")
        copied += 1
    where = without_credentials(rpc_url)
    report.anchored_to.append(f"contract {contract.address} on Ethereum chain {contract.chain_id} at {where} "
                              f"({len(report.block_hashes)} blocks; the run directory holds the first {copied})")
    return report
