"""Ethereum accounts of bmoe participants: derived from the run's seed, or read from a key file.

Owns the secp256k1 key of each participant that posts to the contract (a validator's sealing account).
Derivation is deterministic and domain-separated from the participant's Ed25519 identity: the 32 bytes
of ``derive_identity(seed, "ethereum/" + name)`` (``ledger/keys.py``, itself domain-separated by
``bmoe-key-v1``) are hashed with ``bmoe-eth-key-v1`` into the private key, so the same seed and name give
the same address and the Ed25519 key of ``name`` is unrelated to it. Not a password KDF: use a key file
(one line, 64 hex chars, ``0x`` optional) for anything beyond reproducible runs.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from eth_account import Account
from eth_account.signers.local import LocalAccount

from bmoe.ethereum.errors import AccountKeyError
from bmoe.fileio import read_regular_text
from bmoe.ledger.keys import derive_identity
from bmoe.recursion import restore_recursion_limit

restore_recursion_limit()  # eth-account raised it at import: see bmoe/recursion.py

ETH_KEY_DOMAIN = b"bmoe-eth-key-v1"
SECP256K1_ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
_KEY_TEXT = re.compile(r"(?:0x)?([0-9a-fA-F]{64})")


def derive_eth_account(seed: int | bytes, name: str) -> LocalAccount:
    """The Ethereum account of participant ``name`` in the run seeded by ``seed``."""
    material = derive_identity(seed, f"ethereum/{name}").signing_key.encode()
    counter = 0
    while True:  # a hash outside [1, n) is astronomically rare; re-hash rather than reduce (no bias)
        key = hashlib.sha256(ETH_KEY_DOMAIN + material + counter.to_bytes(4, "big")).digest()
        if 0 < int.from_bytes(key, "big") < SECP256K1_ORDER:
            return Account.from_key(key)
        counter += 1


def account_from_key(key_hex: str) -> LocalAccount:
    """An account from a private key in hex (64 chars, ``0x`` optional)."""
    found = _KEY_TEXT.fullmatch(key_hex.strip())
    if found is None or not 0 < int(found.group(1), 16) < SECP256K1_ORDER:
        raise AccountKeyError("an Ethereum private key must be 64 hex characters (0x optional) in [1, n)")
    return Account.from_key(bytes.fromhex(found.group(1)))


def load_eth_account(path: Path) -> LocalAccount:
    """The account whose private key ``path`` holds (one line of hex)."""
    try:
        text = read_regular_text(path)
    except (OSError, UnicodeDecodeError) as err:
        raise AccountKeyError(f"cannot read Ethereum key file {path}: {err}") from None
    try:
        return account_from_key(text)
    except AccountKeyError as err:
        raise AccountKeyError(f"Ethereum key file {path}: {err}") from None


def address_of(account: LocalAccount) -> str:
    """The account's address in lower case (as the genesis records it)."""
    return str(account.address).lower()
