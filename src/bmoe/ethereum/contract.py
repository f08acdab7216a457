"""``LedgerContract``: bmoe's ledger contract on an Ethereum node, as the client sees it.

Owns connecting to a deployed contract (checked, each failure one line: the RPC URL does not answer, the
chain id is not the expected one, no code at the address or code that is not this version of bmoe's
ledger, a sealing account without funds for gas), deploying one with its enrolment, sealing a block
(one ``sealBlock`` transaction; refused calls raise :class:`~bmoe.ethereum.errors.ContractReverted`
carrying the contract's reason, and seal nothing), and its views in bmoe's own terms (hex digests, CID
text, :class:`~bmoe.ledger.economics.Balance`, :class:`~bmoe.ledger.state.EdgeRecord`).
"""

from __future__ import annotations

from dataclasses import dataclass

from eth_abi import encode as abi_encode
from eth_account.signers.local import LocalAccount
from eth_utils.abi import function_abi_to_4byte_selector, get_abi_input_types
from web3 import Web3
from web3.exceptions import Web3Exception

from bmoe.ethereum.artifact import load_artifact
from bmoe.ethereum.cids import cid_from_chain
from bmoe.ethereum.errors import NotBmoeContract
from bmoe.ethereum.node import open_node
from bmoe.ethereum.records import BlockRecords, Enrolment
from bmoe.ethereum.sender import SentTransaction, TransactionSender
from bmoe.ledger.blocks import GENESIS_PREV_HASH
from bmoe.ledger.economics import Balance
from bmoe.ledger.state import EdgeRecord
from bmoe.recursion import restore_recursion_limit

restore_recursion_limit()  # eth-account raised it at import: see bmoe/recursion.py

SEAL_GAS_FLOOR = 3_000_000  # what a sealing account must afford to connect: about one round at N = M = 10
DEPLOY_GAS_FLOOR = 5_000_000


@dataclass(frozen=True)
class SealedHeader:
    """What the contract keeps of a sealed block."""

    height: int
    block_hash: str  # hex, as bmoe writes it
    state_root: str
    block_cid: str


class LedgerContract:
    """A deployed bmoe ledger contract; ``sender`` (None: read-only) seals blocks from its account."""

    def __init__(self, web3: Web3, address: str, chain_id: int, sender: TransactionSender | None = None) -> None:
        self.web3 = web3
        self.address = address
        self.chain_id = chain_id
        self.sender = sender
        abi = load_artifact().abi
        self.contract = web3.eth.contract(address=Web3.to_checksum_address(address), abi=abi)
        seal_abi = next(entry for entry in abi if entry.get("name") == "sealBlock")
        # eth_abi directly: web3's encode_abi normalises every value first, ~10x slower for a round's records
        self._seal_selector = function_abi_to_4byte_selector(seal_abi)
        self._seal_types = get_abi_input_types(seal_abi)

    @classmethod
    def connect(cls, rpc_url: str, chain_id: int, address: str, account: LocalAccount | None = None) -> LedgerContract:
        """The bmoe contract at ``address`` on the node at ``rpc_url``, checked; with ``account``, ready to seal."""
        web3 = open_node(rpc_url, chain_id)
        checked = _checksum(address)
        check_bmoe_code(web3, checked, chain_id)
        sender = None
        if account is not None:
            sender = TransactionSender(web3, account, chain_id)
            sender.check_funded(SEAL_GAS_FLOOR)
        return cls(web3, checked, chain_id, sender)

    @classmethod
    def deploy(cls, rpc_url: str, chain_id: int, account: LocalAccount,
               enrolment: Enrolment) -> tuple[LedgerContract, SentTransaction]:
        """Deploy a contract enrolling ``enrolment`` from ``account``; it and the deploy transaction."""
        web3 = open_node(rpc_url, chain_id)
        sender = TransactionSender(web3, account, chain_id)
        sender.check_funded(DEPLOY_GAS_FLOOR)
        artifact = load_artifact()
        factory = web3.eth.contract(abi=artifact.abi, bytecode=artifact.bytecode)
        data = factory.constructor(*enrolment.constructor_args()).data_in_transaction
        sent = sender.send("deploying the bmoe ledger contract", {"data": data})
        address = web3.eth.get_transaction_receipt(sent.tx_hash)["contractAddress"]  # type: ignore[arg-type]
        return cls(web3, str(address), chain_id, sender), sent

    def seal_block(self, records: BlockRecords) -> SentTransaction:
        """Seal one block: one ``sealBlock`` transaction, mined, or nothing sealed and the contract's reason."""
        if self.sender is None:
            raise ValueError("a read-only LedgerContract cannot seal; connect with an account")
        data = self._seal_selector + abi_encode(self._seal_types, records.call_args())
        return self.sender.send(f"sealing block {records.header.height}", {"to": self.contract.address, "data": data})

    # ---------------------------------------------------------------- views

    def version(self) -> str:
        return str(self.contract.functions.VERSION().call())

    def head(self) -> tuple[int, str]:
        """The height (-1 before any block) and hash of the last sealed block."""
        count = int(self.contract.functions.blockCount().call())
        if count == 0:
            return -1, GENESIS_PREV_HASH
        return count - 1, bytes(self.contract.functions.headHash().call()).hex()

    def sealed_block(self, height: int) -> SealedHeader:
        block_hash, state_root, (digest, codec) = self.contract.functions.sealedBlock(height).call()
        return SealedHeader(height, bytes(block_hash).hex(), bytes(state_root).hex(),
                            str(cid_from_chain(digest, codec)))

    def expert_cids(self) -> list[str]:
        count = int(self.contract.functions.numExperts().call())
        return [str(cid_from_chain(*self.contract.functions.expertCid(expert).call())) for expert in range(count)]

    def gate_cid(self) -> str:
        return str(cid_from_chain(*self.contract.functions.gateCid().call()))

    def edges(self) -> list[str]:
        count = int(self.contract.functions.edgeCount().call())
        return [bytes(self.contract.functions.edges(index).call()).hex() for index in range(count)]

    def balance(self, edge: str) -> Balance:
        stake, earned, slashed, _ = self.contract.functions.balanceOf(bytes.fromhex(edge)).call()
        return Balance(int(stake), int(earned), int(slashed))

    def edge_record(self, edge: str) -> EdgeRecord:
        _, committed, accepted, dissent, withheld = self.contract.functions.edgeRecord(bytes.fromhex(edge)).call()
        return EdgeRecord(int(committed), int(accepted), int(dissent), int(withheld))

    def is_validator(self, account: str) -> bool:
        return bool(self.contract.functions.isValidator(Web3.to_checksum_address(account)).call())


def _checksum(address: str) -> str:
    if not Web3.is_address(address):
        raise NotBmoeContract(f"{address!r} is not an Ethereum address (0x and 40 hex characters)")
    return str(Web3.to_checksum_address(address))


def check_bmoe_code(web3: Web3, address: str, chain_id: int) -> None:
    """:class:`NotBmoeContract` unless ``address`` holds exactly this client's contract code."""
    code = bytes(web3.eth.get_code(Web3.to_checksum_address(address)))
    if not code:
        raise NotBmoeContract(f"no contract at {address} on chain {chain_id}")
    artifact = load_artifact()
    if code == artifact.runtime:
        return
    try:
        version = str(web3.eth.contract(address=Web3.to_checksum_address(address), abi=artifact.abi)
                      .functions.VERSION().call())
    except (Web3Exception, ValueError, OverflowError):
        version = ""
    if version.startswith("bmoe-ledger/"):
        raise NotBmoeContract(f"the contract at {address} is bmoe's ledger {version}; this client speaks "
                              f"{artifact.version}")
    raise NotBmoeContract(f"the contract at {address} on chain {chain_id} is not a bmoe ledger "
                          f"(its code is not BmoeLedger {artifact.version}'s)")
