"""The Ethereum sealing engine's host side: a bmoe block sealed by one ``sealBlock`` transaction.

Owns :class:`EthereumSealer`, a ``LedgerNode`` sealer (``ledger/node.py``'s ``Sealer``). For each
proposal it builds the block (header engine ``ethereum``; block 0 is mined by PoW like under every
engine), puts the block's bytes in the run's store under the CID the contract records (so anyone who
reads the contract can fetch the block), derives the contract's records by replaying the block on the
state before it (``records.block_records``), makes the store durable (``before_post``), sends them and
waits for the receipt. The sealed block
carries the certificate ``{"chain_id", "contract", "transaction", "block_number"}``
(``ledger/sealing/ethereum.py``). A call the contract refuses seals nothing (``ContractReverted``).

It keeps the gas and seconds of every seal for reports and benchmarks.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from bmoe.ethereum.contract import LedgerContract
from bmoe.ethereum.records import BlockRecords, block_records
from bmoe.ledger.blocks import Block, BlockHeader, header_hash, proposal_bytes
from bmoe.ledger.merkle import merkle_root
from bmoe.ledger.node import Proposal
from bmoe.ledger.pow import seal_block
from bmoe.ledger.state import LedgerState
from bmoe.ledger.transactions import tx_hash
from bmoe.storage import BlobStore

ENGINE = "ethereum"


@dataclass
class SealCosts:
    """What sealing cost on chain, per block."""

    gas: list[int] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)


class EthereumSealer:
    """Seals each proposal through ``contract``; ``state`` is the node's sealed state (before the block).

    A sealer is given to its ledger node as the node is built, before a new run's contract exists: the
    contract is then set once, when the genesis deploys it (``run/ethereum_ledger.py``)."""

    def __init__(self, contract: LedgerContract | None, store: BlobStore, state: Callable[[], LedgerState],
                 genesis_difficulty: int = 0, before_post: Callable[[], object] | None = None) -> None:
        self.contract = contract
        self.store = store
        self.state = state
        self.genesis_difficulty = genesis_difficulty
        self.before_post = before_post  # makes the stored objects durable (a batching store's flush)
        self.costs = SealCosts()

    def __call__(self, proposal: Proposal) -> tuple[Block, float]:
        started = time.perf_counter()
        block = self.build(proposal)
        records, _ = block_records(self.state(), block)
        sealed = self.post(block, records)
        return sealed, time.perf_counter() - started

    def build(self, proposal: Proposal) -> Block:
        """The proposer's signed block, before it is posted (block 0: mined, as under every engine)."""
        if proposal.height == 0:
            return seal_block(proposal.proposer, 0, proposal.prev_hash, proposal.transactions, proposal.timestamp,
                              self.genesis_difficulty, proposal.state_root)
        header = BlockHeader(height=proposal.height, prev_hash=proposal.prev_hash,
                             merkle_root=merkle_root([tx_hash(tx) for tx in proposal.transactions]),
                             timestamp=proposal.timestamp, proposer=proposal.proposer.address, consensus=ENGINE,
                             difficulty=0, nonce=0, state_root=proposal.state_root)
        return Block(header, proposal.transactions, proposal.proposer.sign(bytes.fromhex(header_hash(header))))

    def post(self, block: Block, records: BlockRecords) -> Block:
        """Store ``block``'s bytes, send ``records``; the block with its certificate (block 0 carries none)."""
        started = time.perf_counter()
        assert self.contract is not None, "the run's contract is set when the genesis deploys it"
        self.store.put(proposal_bytes(block))
        if self.before_post is not None:
            self.before_post()  # the block's objects and bytes are durable before the contract names them
        sent = self.contract.seal_block(records)
        self.costs.gas.append(sent.gas_used)
        self.costs.seconds.append(time.perf_counter() - started)
        return certified(block, self.contract, sent.tx_hash, sent.block_number)


def certified(block: Block, contract: LedgerContract, transaction: str, block_number: int) -> Block:
    """``block`` with the certificate naming where ``contract`` sealed it: the chain, the contract, the
    ``sealBlock`` transaction and its Ethereum block (block 0, mined like under every engine, carries none)."""
    if block.header.height == 0:
        return block
    certificate = {"chain_id": contract.chain_id, "contract": contract.address.lower(),
                   "transaction": transaction.lower(), "block_number": block_number}
    return Block(block.header, block.transactions, block.proposer_signature, certificate)
