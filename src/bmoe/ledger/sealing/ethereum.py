"""The Ethereum engine: each block is sealed by a transaction to the run's bmoe ledger contract.

The genesis section is ``{"engine": "ethereum", "chain_id": id, "contract": "0x…", "accounts": {validator
address: Ethereum account}}``. The proposer posts the block's hashes and the records the contract checks
(``bmoe.ethereum``) in one transaction; the contract orders the blocks, so the chain of record is the
contract's, and the block carries a *certificate* naming where it was sealed: ``{"chain_id", "contract",
"transaction", "block_number"}`` (not part of the header hash, like a PBFT certificate).

Offline, a certificate can only be checked for its shape and for naming the genesis's chain and contract;
``bmoe audit --rpc-url`` checks each block against the contract's own record of it (``bmoe.ethereum.audit``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bmoe.ledger.blocks import Block
from bmoe.ledger.keys import is_address
from bmoe.ledger.sealing.pow import is_int_in

ETH_ADDRESS = re.compile(r"0x[0-9a-f]{40}")
ETH_TX_HASH = re.compile(r"0x[0-9a-f]{64}")
CERTIFICATE_FIELDS = frozenset({"chain_id", "contract", "transaction", "block_number"})
MAX_CHAIN_ID = 2**53


@dataclass(frozen=True)
class EthereumRules:
    chain_id: int
    contract: str  # lower-case 0x address
    accounts: Mapping[str, str]  # validator address -> its Ethereum account (lower-case 0x)

    def block_error(self, block: Block) -> str | None:
        certificate = block.certificate
        if certificate is None or set(certificate) != CERTIFICATE_FIELDS:
            return f"an Ethereum seal must carry a certificate with exactly {sorted(CERTIFICATE_FIELDS)}"
        if certificate["chain_id"] != self.chain_id or certificate["contract"] != self.contract:
            return (f"sealed on chain {certificate['chain_id']} by {certificate['contract']}, but the genesis fixes "
                    f"chain {self.chain_id}, contract {self.contract}")
        if not isinstance(certificate["transaction"], str) or not ETH_TX_HASH.fullmatch(certificate["transaction"]):
            return "the certificate's transaction is not a 0x-prefixed 32-byte hash"
        if not is_int_in(certificate["block_number"], 0, 2**63 - 1):
            return "the certificate's block_number is not an Ethereum block number"
        return None

    def describe(self, validators: int) -> str:
        return (f"transactions of {validators} genesis validator(s) to contract {self.contract} on Ethereum chain "
                f"{self.chain_id}")


class EthereumEngine:
    name = "ethereum"

    def rules(self, section: Mapping[str, Any], validators: frozenset[str]) -> EthereumRules:
        chain_id, contract, accounts = section.get("chain_id"), section.get("contract"), section.get("accounts")
        if not is_int_in(chain_id, 1, MAX_CHAIN_ID):
            raise ValueError("Ethereum chain_id must be a positive int")
        if not isinstance(contract, str) or not ETH_ADDRESS.fullmatch(contract):
            raise ValueError("Ethereum contract must be a lower-case 0x-prefixed 20-byte address")
        if not isinstance(accounts, Mapping) or set(accounts) != set(validators):
            raise ValueError("Ethereum accounts must map exactly the genesis validators")
        if not all(is_address(k) and isinstance(v, str) and ETH_ADDRESS.fullmatch(v) for k, v in accounts.items()):
            raise ValueError("Ethereum accounts must map validator addresses to lower-case 0x addresses")
        assert isinstance(chain_id, int)
        return EthereumRules(chain_id, contract, dict(accounts))


ETHEREUM_ENGINE = EthereumEngine()
