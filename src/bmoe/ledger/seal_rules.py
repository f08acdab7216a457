"""How every block must be sealed, read from the genesis alone.

Owns the rule that no header chooses its own consensus: the genesis transaction in block 0 fixes
the engine (``pow`` or ``pbft``), the validators who may propose, the PoW difficulty every block
declares, and (PBFT) the validator set whose 2f + 1 signatures certify each block. Nothing here is
read from files beside the chain (``config.json`` can be edited; the genesis is signed and hashed
into every later block).

Block 0 is mined by the validator that signed the genesis, under every engine (PBFT seals the
blocks after it). The commit-certificate format belongs to the consensus engine, so the caller
passes a factory that builds the certificate check from the genesis's ``consensus`` section.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from bmoe.ledger.blocks import CONSENSUS_KINDS, MAX_DIFFICULTY, Block
from bmoe.ledger.errors import InvalidBlock, short_hash
from bmoe.ledger.keys import is_address

CertificateCheck = Callable[[Block], "str | None"]
CertificateCheckFactory = Callable[[dict[str, Any]], CertificateCheck]


@dataclass(frozen=True)
class SealRules:
    """The sealing rules a genesis fixes for its whole chain."""

    engine: str  # "pow" | "pbft"
    genesis_sender: str  # the validator that signed the genesis and mined block 0
    validators: frozenset[str]  # addresses allowed to propose a block
    difficulty: int | None  # pow: the exact difficulty every block declares
    certificate_check: CertificateCheck | None  # pbft: checks a block's commit certificate

    def describe(self) -> str:
        """One line for reports: the engine and its parameters."""
        if self.engine == "pow":
            return f"proof of work at difficulty {self.difficulty} by {len(self.validators)} genesis validator(s)"
        return f"PBFT commit certificates of the {len(self.validators)} genesis validators"


def _int_in(value: object, low: int, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def genesis_seal_rules(block: Block, certificate_checks: CertificateCheckFactory | None) -> SealRules:
    """The rules block 0's genesis fixes; :class:`InvalidBlock` naming what is missing or malformed."""
    if block.header.height != 0 or not block.transactions or block.transactions[0].kind != "genesis":
        raise InvalidBlock(block.header.height, "block 0 does not open with a genesis transaction")
    genesis_tx = block.transactions[0]
    genesis = genesis_tx.payload
    validators = genesis.get("validators")
    if not isinstance(validators, list) or not validators or not all(is_address(v) for v in validators):
        raise InvalidBlock(0, "genesis: validators must be a non-empty list of addresses")
    section = genesis.get("consensus")
    if not isinstance(section, Mapping) or section.get("engine") not in CONSENSUS_KINDS:
        raise InvalidBlock(0, f"genesis: consensus section must name an engine in {CONSENSUS_KINDS}")
    engine = str(section["engine"])
    difficulty: int | None = None
    check: CertificateCheck | None = None
    if engine == "pow":
        difficulty = section.get("difficulty")
        if not _int_in(difficulty, 0, MAX_DIFFICULTY):
            raise InvalidBlock(0, f"genesis: PoW difficulty must be an int in [0, {MAX_DIFFICULTY}]")
    else:
        members = section.get("validators")
        if not isinstance(members, Mapping) or set(members.values()) != set(validators):
            raise InvalidBlock(0, "genesis: the PBFT validator set differs from the genesis validators")
        if not _int_in(section.get("f"), 0, (len(validators) - 1) // 3):
            raise InvalidBlock(0, "genesis: PBFT f must be an int in [0, (n - 1) // 3]")
        if certificate_checks is None:
            raise InvalidBlock(0, "a PBFT chain, but no way to check its commit certificates was given")
        check = certificate_checks(dict(section))
    return SealRules(engine, genesis_tx.sender, frozenset(validators), difficulty, check)


def seal_error(rules: SealRules, block: Block) -> str | None:
    """Why ``block``'s seal breaks the genesis's rules, or None.

    Signatures and the declared PoW are checked by ``chain_check``; this checks who sealed the block
    and by which engine, against the genesis.
    """
    header = block.header
    if header.height == 0:
        if header.proposer != rules.genesis_sender:
            return f"block 0 mined by {short_hash(header.proposer)}, not by the genesis signer"
        if header.consensus != "pow" or block.certificate is not None:
            return "block 0 must be mined (PoW) without a certificate"
        if rules.engine == "pow" and header.difficulty != rules.difficulty:
            return f"declares difficulty {header.difficulty}, the genesis fixes {rules.difficulty}"
        return None
    if header.consensus != rules.engine:
        return f"sealed by {header.consensus}, but the genesis fixes {rules.engine}"
    if header.proposer not in rules.validators:
        return f"proposer {short_hash(header.proposer)} is not a validator enrolled in the genesis"
    if rules.engine == "pow" and header.difficulty != rules.difficulty:
        return f"declares difficulty {header.difficulty}, the genesis fixes {rules.difficulty}"
    return None
