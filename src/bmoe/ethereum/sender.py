"""Sending signed transactions from one account: explicit nonces, receipts, revert reasons, funding.

Owns the life of a transaction: estimated first (a call the contract would refuse raises
:class:`ContractReverted` with the contract's reason and sends nothing, so no nonce is spent and nothing
is recorded half-way), signed locally (eth-account, coincurve), sent with the next nonce this sender
counts itself, and waited for until its receipt. A mined transaction that reverted anyway (the chain
moved between the estimate and the block) is replayed as a call at its block for its reason.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import requests
from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.exceptions import ContractLogicError, TimeExhausted, Web3RPCError

from bmoe.ethereum.errors import AccountUnfunded, ContractReverted, EthereumError, NodeUnreachable
from bmoe.recursion import restore_recursion_limit

restore_recursion_limit()  # eth-account raised it at import: see bmoe/recursion.py

TX_GAS_CAP = 2**24  # EIP-7825 (Osaka): the most gas one transaction may use on mainnet
GAS_MARGIN = 1.25  # on the estimate: warm/cold storage accounting can differ between estimate and block
RECEIPT_SECONDS = 120.0


@dataclass(frozen=True)
class SentTransaction:
    """A mined transaction: its hash (0x hex), the gas it used and the Ethereum block holding it."""

    tx_hash: str
    gas_used: int
    block_number: int


class TransactionSender:
    """``account``'s transactions to the node behind ``web3`` on ``chain_id``; nonces counted here."""

    def __init__(self, web3: Web3, account: LocalAccount, chain_id: int) -> None:
        self.web3 = web3
        self.account = account
        self.chain_id = chain_id
        self.nonce = web3.eth.get_transaction_count(account.address, "pending")

    @property
    def address(self) -> str:
        return str(self.account.address)

    def fees(self) -> dict[str, int]:
        """EIP-1559 fees that stay valid while the base fee doubles: 2 x base fee + the node's tip."""
        base = int(self.web3.eth.get_block("latest").get("baseFeePerGas") or 0)
        tip = int(self.web3.eth.max_priority_fee)
        return {"maxFeePerGas": 2 * base + tip, "maxPriorityFeePerGas": tip}

    def check_funded(self, gas: int) -> None:
        """:class:`AccountUnfunded` unless the account can pay ``gas`` at the current fees."""
        balance = int(self.web3.eth.get_balance(self.account.address))
        needed = gas * self.fees()["maxFeePerGas"]
        if balance < needed:
            raise AccountUnfunded(f"Ethereum account {self.address} holds {balance} wei, less than the {needed} wei "
                                  f"{gas} gas costs at the current fees; fund it")

    def send(self, action: str, call: dict[str, Any]) -> SentTransaction:
        """Estimate, sign, send and wait for ``call`` (``to``/``data``/``value``); ``action`` names it in errors."""
        try:
            return self._send(action, call)
        except requests.RequestException as err:
            raise NodeUnreachable(f"{action}: the Ethereum node stopped answering: {type(err).__name__}") from None

    def _send(self, action: str, call: dict[str, Any]) -> SentTransaction:
        request = {"from": self.account.address, "chainId": self.chain_id, **call}
        try:
            estimate = int(self.web3.eth.estimate_gas(request))  # type: ignore[arg-type]
        except ContractLogicError as err:
            raise ContractReverted(action, revert_reason(err)) from None
        except Web3RPCError as err:
            raise _rpc_error(action, err, self.address) from None
        if estimate > TX_GAS_CAP:
            raise EthereumError(f"{action} needs {estimate} gas, more than one transaction may use ({TX_GAS_CAP})")
        tx = {**request, "nonce": self.nonce, "gas": min(TX_GAS_CAP, int(estimate * GAS_MARGIN)), **self.fees()}
        signed = self.account.sign_transaction(tx)
        try:
            tx_hash = self.web3.eth.send_raw_transaction(signed.raw_transaction)
        except Web3RPCError as err:
            self.nonce = self.web3.eth.get_transaction_count(self.account.address, "pending")
            raise _rpc_error(action, err, self.address) from None
        self.nonce += 1
        try:
            receipt = self.web3.eth.wait_for_transaction_receipt(tx_hash, timeout=RECEIPT_SECONDS, poll_latency=0.02)
        except TimeExhausted:
            raise EthereumError(f"{action}: transaction 0x{bytes(tx_hash).hex()} was not mined within "
                                f"{RECEIPT_SECONDS:.0f} s") from None
        if receipt["status"] != 1:
            raise ContractReverted(action, self._replayed_reason(tx, int(receipt["blockNumber"])))
        return SentTransaction("0x" + bytes(tx_hash).hex(), int(receipt["gasUsed"]), int(receipt["blockNumber"]))

    def _replayed_reason(self, tx: dict[str, Any], block_number: int) -> str:
        call = {key: tx[key] for key in ("from", "to", "data", "value") if key in tx}
        try:
            self.web3.eth.call(call, block_number - 1)  # type: ignore[arg-type]
        except ContractLogicError as err:
            return revert_reason(err)
        except Web3RPCError as err:
            return str(err)
        return "reverted when mined (out of gas, or the chain moved)"


def revert_reason(err: ContractLogicError) -> str:
    """The contract's revert string, without web3's prefix."""
    text = str(err.message if getattr(err, "message", None) else err)
    for prefix in ("execution reverted: ", "execution reverted"):
        if text.startswith(prefix):
            return text[len(prefix):].strip() or "reverted without a reason"
    return text


def _rpc_error(action: str, err: Web3RPCError, address: str) -> EthereumError:
    text = str(getattr(err, "message", None) or err)
    if "insufficient funds" in text.lower():
        return AccountUnfunded(f"Ethereum account {address} cannot pay for {action}: {text}; fund it")
    return EthereumError(f"{action}: the node refused the transaction: {text}")


def fund(sender: TransactionSender, recipients: Sequence[str], wei: int) -> list[SentTransaction]:
    """Send ``wei`` to each of ``recipients`` from ``sender`` (plain signed transfers)."""
    return [sender.send(f"funding {recipient}", {"to": Web3.to_checksum_address(recipient), "value": wei})
            for recipient in recipients]
