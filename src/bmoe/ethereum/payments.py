"""``PaymentsContract``: bmoe's payments contract (``contracts/BmoePayments.vy``) as the client sees it, and the
replay of a chain's deposits and settlements into it.

Owns deploying the contract (enrolling the validators' Ethereum accounts), its calls (``deposit`` from any account,
``bindOwner`` and ``settle`` from a validator's, ``withdraw`` from an account's owner; a refused call raises
:class:`~bmoe.ethereum.errors.ContractReverted` with the contract's reason), its views in bmoe's terms, and
:func:`replay_payments`: every genesis deposit, ``deposit`` and ``settlement`` of a bmoe chain sent to the contract in
chain order, after which each account's balance on the contract equals the one bmoe derives by replay
(``run/payments.bill``).

Account ids (:func:`account_id`): an edge's or validator's bmoe key as its 32 bytes; a requester's name as the
SHA-256 of ``bmoe-account:<name>``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from eth_account.signers.local import LocalAccount
from web3 import Web3

from bmoe.ethereum.artifact import load_payments_artifact
from bmoe.ethereum.node import open_node
from bmoe.ethereum.sender import SentTransaction, TransactionSender
from bmoe.ledger.blocks import Block
from bmoe.ledger.encoding import is_hex64
from bmoe.recursion import restore_recursion_limit

restore_recursion_limit()  # eth-account raised it at import: see bmoe/recursion.py


def account_id(account: str) -> bytes:
    """The contract's 32-byte id of a bmoe account: a key as itself, a requester's name hashed."""
    if is_hex64(account):
        return bytes.fromhex(account)
    return hashlib.sha256(f"bmoe-account:{account}".encode()).digest()


def generation_id(generation: str) -> bytes:
    return hashlib.sha256(f"bmoe-generation:{generation}".encode()).digest()


class PaymentsContract:
    """A deployed payments contract; calls go from ``sender``'s account."""

    def __init__(self, web3: Web3, address: str, chain_id: int, sender: TransactionSender) -> None:
        self.web3 = web3
        self.address = address
        self.chain_id = chain_id
        self.sender = sender
        self.contract = web3.eth.contract(address=Web3.to_checksum_address(address),
                                          abi=load_payments_artifact().abi)

    @classmethod
    def deploy(cls, rpc_url: str, chain_id: int, account: LocalAccount, validators: Sequence[str]
               ) -> PaymentsContract:
        """Deploy from ``account``, enrolling ``validators`` (Ethereum addresses) as the accounts that settle."""
        web3 = open_node(rpc_url, chain_id)
        sender = TransactionSender(web3, account, chain_id)
        artifact = load_payments_artifact()
        factory = web3.eth.contract(abi=artifact.abi, bytecode=artifact.bytecode)
        data = factory.constructor([Web3.to_checksum_address(v) for v in validators]).data_in_transaction
        sent = sender.send("deploying the bmoe payments contract", {"data": data})
        address = web3.eth.get_transaction_receipt(sent.tx_hash)["contractAddress"]  # type: ignore[arg-type]
        return cls(web3, str(address), chain_id, sender)

    def as_account(self, account: LocalAccount) -> PaymentsContract:
        """The same contract, calls going from ``account``."""
        return PaymentsContract(self.web3, self.address, self.chain_id,
                                TransactionSender(self.web3, account, self.chain_id))

    def _send(self, action: str, name: str, args: Sequence[Any], value: int = 0) -> SentTransaction:
        call: dict[str, Any] = {"to": self.contract.address, "data": self.contract.encode_abi(name, args=list(args))}
        if value:
            call["value"] = value
        return self.sender.send(action, call)

    def deposit(self, account: str, wei: int) -> SentTransaction:
        return self._send(f"depositing {wei} wei for {account[:16]}",
                          "deposit", [account_id(account)], wei)

    def bind_owner(self, account: str, owner: str) -> SentTransaction:
        return self._send(f"binding {account[:16]} to {owner}",
                          "bindOwner", [account_id(account), Web3.to_checksum_address(owner)])

    def settle(self, payload: Mapping[str, Any], validator: str) -> SentTransaction:
        """Send one bmoe ``settlement`` payload, sealed by ``validator`` (its bmoe key: it earns the validator's
        credit)."""
        payees = [(c["edge"], c["amount"]) for c in payload["credits"]] + [(validator, payload["validator"])]
        args = [generation_id(payload["generation"]), payload["chunk"],
                [account_id(c["payer"]) for c in payload["charges"]], [c["amount"] for c in payload["charges"]],
                [account_id(account) for account, _ in payees], [amount for _, amount in payees]]
        return self._send(f"settling chunk {payload['chunk']} of {payload['generation']}", "settle", args)

    def withdraw(self, account: str, wei: int) -> SentTransaction:
        return self._send(f"withdrawing {wei} wei from {account[:16]}",
                          "withdraw", [account_id(account), wei])

    def balance(self, account: str) -> int:
        return int(self.contract.functions.balanceOf(account_id(account)).call())

    def owner(self, account: str) -> str:
        return str(self.contract.functions.ownerOf(account_id(account)).call())

    def settlements(self) -> int:
        return int(self.contract.functions.settlementCount().call())


def replay_payments(contract: PaymentsContract, blocks: Iterable[Block]) -> int:
    """Send a bmoe chain's deposits (the genesis's and each ``deposit``) and settlements to ``contract`` in chain
    order, from the contract's sender (which must be an enrolled validator and hold the deposits' ether); how
    many settlements were sent."""
    settled = 0
    for block in blocks:
        for tx in block.transactions:
            if tx.kind == "genesis" and "payments" in tx.payload:
                for account, units in sorted(tx.payload["payments"]["deposits"].items()):
                    if units:
                        contract.deposit(account, units)
            elif tx.kind == "deposit":
                contract.deposit(tx.payload["account"], tx.payload["amount"])
            elif tx.kind == "settlement":
                contract.settle(tx.payload, tx.sender)
                settled += 1
    return settled
