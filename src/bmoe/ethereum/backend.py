"""A run's ledger on Ethereum: deploy its contract at genesis, or reconnect to it and catch up.

Owns what a session does with the Ethereum engine around its ``LedgerNode``:

* :func:`sealing_account` - the validator's Ethereum account: a key file, or derived from the run's seed;
* :func:`deploy_ledger` - deploy the contract enrolling the genesis's edges, stakes, model and rule, and
  return the genesis's ``consensus`` section naming it (chain id, contract, the validators' accounts);
* :func:`connect_ledger` - reconnect to the contract a chain's genesis names (chain id, code and sealing
  account checked, each failure one line);
* :func:`catch_up` - bring the node level with the contract: blocks the contract sealed after the local
  chain's head (the process died between the receipt and the local write) are fetched from the store by
  the CID the contract records, checked and adopted. A contract *behind* the local chain is refused.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from eth_account.signers.local import LocalAccount

from bmoe.ethereum.accounts import address_of, derive_eth_account, load_eth_account
from bmoe.ethereum.contract import LedgerContract
from bmoe.ethereum.errors import EthereumError
from bmoe.ethereum.logs import SealedBlockLog, sealed_blocks
from bmoe.ethereum.node import chain_id_of
from bmoe.ethereum.records import enrolment_of
from bmoe.ethereum.sealer import certified
from bmoe.ledger.blocks import Block, block_from_bytes
from bmoe.ledger.errors import LedgerError
from bmoe.ledger.keys import Identity
from bmoe.ledger.node import LedgerNode
from bmoe.recursion import restore_recursion_limit
from bmoe.storage import BlobStore, StorageError

restore_recursion_limit()  # eth-account raised it at import: see bmoe/recursion.py


class LedgerMismatch(EthereumError):
    """The contract and the local chain disagree."""


def sealing_account(seed: int, validator: Identity, key_file: str | None) -> LocalAccount:
    """``validator``'s Ethereum account: from ``key_file`` when given, else derived from the run's seed."""
    return load_eth_account(Path(key_file)) if key_file else derive_eth_account(seed, validator.name)


def deploy_ledger(rpc_url: str, account: LocalAccount, genesis: Mapping[str, Any],
                  validators: Mapping[str, LocalAccount]) -> tuple[LedgerContract, dict[str, Any]]:
    """Deploy the contract for ``genesis`` (its consensus section unread) from ``account``; the contract and
    the section the genesis must record. ``validators``: each genesis validator's sealing account."""
    chain_id = chain_id_of(rpc_url)
    ordered = sorted(validators.items())
    enrolment = enrolment_of(genesis, [str(eth.address) for _, eth in ordered])
    contract, _ = LedgerContract.deploy(rpc_url, chain_id, account, enrolment)
    accounts = {validator: address_of(eth) for validator, eth in ordered}
    section = {"engine": "ethereum", "chain_id": chain_id, "contract": contract.address.lower(), "accounts": accounts}
    return contract, section


def connect_ledger(rpc_url: str, section: Mapping[str, Any], validator: Identity,
                   account: LocalAccount | None) -> LedgerContract:
    """The contract ``section`` names, checked; with ``account`` (which must be ``validator``'s enrolled
    account) ready to seal."""
    if account is not None:
        enrolled = dict(section.get("accounts", {})).get(validator.address)
        if enrolled != address_of(account):
            raise LedgerMismatch(f"the genesis enrols Ethereum account {enrolled} for {validator.name}, not "
                                 f"{address_of(account)}: give that account's key (--eth-key)")
    return LedgerContract.connect(rpc_url, int(section["chain_id"]), str(section["contract"]), account)


def catch_up(node: LedgerNode, contract: LedgerContract, store: BlobStore) -> int:
    """Adopt the blocks ``contract`` sealed beyond ``node``'s head; how many. :class:`LedgerMismatch` when the
    contract is behind the node or holds another block at the node's head."""
    height, _ = contract.head()
    local = node.view().height
    if height < local:
        raise LedgerMismatch(f"contract {contract.address} holds {height + 1} block(s), the local chain {local + 1}: "
                             "not this run's contract, or the Ethereum node was reset")
    if local >= 0 and contract.sealed_block(local).block_hash != node.head_hash:
        raise LedgerMismatch(f"contract {contract.address} sealed another block at height {local} than the local "
                             "chain's head")
    if height == local:
        return 0
    logs = {log.records.header.height: log for log in sealed_blocks(contract)}
    for missing in range(local + 1, height + 1):
        node.adopt(sealed_block(contract, store, missing, logs)[1])
    return height - local


def sealed_block(contract: LedgerContract, store: BlobStore, height: int,
                 logs: Mapping[int, SealedBlockLog]) -> tuple[str, Block]:
    """The block ``contract`` sealed at ``height``: the hash the contract records, and the block read from
    ``store`` under the CID the contract records, with the certificate its ``logs`` give; :class:`LedgerMismatch`
    naming the block when the logs lack it or the store cannot give its bytes."""
    sealed = contract.sealed_block(height)
    log = logs.get(height)
    if log is None:
        raise LedgerMismatch(f"block {height}: the contract holds it but its logs do not")
    try:
        block = block_from_bytes(store.get(sealed.block_cid))
    except (StorageError, LedgerError) as err:
        raise LedgerMismatch(f"block {height}: the bytes the contract names (object {sealed.block_cid}) cannot be "
                             f"read from the store: {err}") from None
    return sealed.block_hash, certified(block, contract, log.transaction, log.eth_block)
