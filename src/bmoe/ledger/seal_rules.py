"""How every block must be sealed, read from the genesis alone.

Owns the rule that no header chooses its own consensus: the genesis transaction in block 0 fixes
the engine (one of ``ledger/sealing``'s registry), the validators who may propose, and the engine's
parameters (PoW difficulty, PBFT validator set, ...). Nothing here is read from files beside the chain
(``config.json`` can be edited; the genesis is signed and hashed into every later block).

Block 0 is mined by the validator that signed the genesis, under every engine (the engine seals the
blocks after it). The engine's own checks of each later block are its :class:`EngineRules`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from bmoe.ledger.blocks import Block
from bmoe.ledger.errors import InvalidBlock, short_hash
from bmoe.ledger.keys import is_address
from bmoe.ledger.sealing import EngineRules, engine_rules
from bmoe.ledger.sealing.pow import PowRules


@dataclass(frozen=True)
class SealRules:
    """The sealing rules a genesis fixes for its whole chain."""

    engine: str  # a key of ledger.sealing.SEALING_ENGINES
    genesis_sender: str  # the validator that signed the genesis and mined block 0
    validators: frozenset[str]  # addresses allowed to propose a block
    engine_rules: EngineRules

    def describe(self) -> str:
        """One line for reports: the engine and its parameters."""
        return self.engine_rules.describe(len(self.validators))


def genesis_seal_rules(block: Block) -> SealRules:
    """The rules block 0's genesis fixes; :class:`InvalidBlock` naming what is missing or malformed."""
    if block.header.height != 0 or not block.transactions or block.transactions[0].kind != "genesis":
        raise InvalidBlock(block.header.height, "block 0 does not open with a genesis transaction")
    genesis_tx = block.transactions[0]
    genesis = genesis_tx.payload
    validators = genesis.get("validators")
    if not isinstance(validators, list) or not validators or not all(is_address(v) for v in validators):
        raise InvalidBlock(0, "genesis: validators must be a non-empty list of addresses")
    section = genesis.get("consensus")
    if not isinstance(section, Mapping):
        raise InvalidBlock(0, "genesis: the consensus section must be a JSON object")
    try:
        engine, rules = engine_rules(section, frozenset(validators))
    except ValueError as err:
        raise InvalidBlock(0, f"genesis: {err}") from None
    return SealRules(engine, genesis_tx.sender, frozenset(validators), rules)


def seal_error(rules: SealRules, block: Block, sealed: bool = True) -> str | None:
    """Why ``block``'s seal breaks the genesis's rules, or None.

    Signatures and a PoW header's declared work are checked by ``chain_check``; this checks who
    sealed the block and by which engine, against the genesis, then the engine's own rules.
    ``sealed=False``: a proposal, judged before its consensus sealed it (a PBFT block before its
    commit certificate exists): who proposed it and under which engine, and that it carries no seal.
    """
    header = block.header
    if header.height == 0:
        if header.proposer != rules.genesis_sender:
            return f"block 0 mined by {short_hash(header.proposer)}, not by the genesis signer"
        if header.consensus != "pow" or block.certificate is not None:
            return "block 0 must be mined (PoW) without a certificate"
        if isinstance(rules.engine_rules, PowRules):  # a PoW chain mines block 0 at its difficulty too
            return rules.engine_rules.block_error(block)
        return None
    if header.consensus != rules.engine:
        return f"sealed by {header.consensus}, but the genesis fixes {rules.engine}"
    if header.proposer not in rules.validators:
        return f"proposer {short_hash(header.proposer)} is not a validator enrolled in the genesis"
    if not sealed:
        return None if block.certificate is None else "a proposal carries no seal (its certificate follows the commit)"
    return rules.engine_rules.block_error(block)
