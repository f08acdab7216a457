"""One way to judge a block: check it (``chain_check.check_block``), then apply it.

Owns the one path by which a block enters any state, whoever judges it: a PBFT replica judging a
proposal, a node applying the block its consensus committed, a follower adopting a peer's block, a
restarted node replaying its chain, the Ethereum backend catching up with its contract, and ``bmoe
audit``. The check is the chain's: the link, the Merkle root, every transaction's signature, the
proposer's signature, a PoW header's work, and the seal against the genesis's rules
(``seal_rules``: the engine, the enrolled validators, the engine's own proof). The one parameter is
``sealed``: a proposal (``sealed=False``) has no seal yet (a PBFT certificate exists only after the
commit), so it is checked for everything but the engine's proof; a committed block is checked for
all of it. ``apply`` is how the state advances: the state machine (``state.apply_block``), or a
validator's re-execution of the tensor rules (``protocol/reexecute.py``), which runs it.

Must not know: tensors, consensus messages, sockets.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from bmoe.ledger.blocks import Block, block_hash
from bmoe.ledger.chain_check import check_block
from bmoe.ledger.errors import InvalidBlock
from bmoe.ledger.seal_rules import SealRules, genesis_seal_rules, seal_error
from bmoe.ledger.state import LedgerState, apply_block

Apply = Callable[[LedgerState, Block], LedgerState]  # the state after a checked block, or a LedgerError


@dataclass(frozen=True)
class Judged:
    """A block that passed: the state after it, the genesis's rules, its hash, the signatures checked."""

    state: LedgerState
    rules: SealRules
    block_hash: str
    signatures: int


def check_then_apply(state: LedgerState, head_hash: str, rules: SealRules | None, block: Block, *,
                     sealed: bool = True, apply: Apply = apply_block) -> Judged:
    """Judge ``block`` on top of ``state`` (whose head is ``head_hash``; ``rules``: its genesis's, None
    before block 0) and apply it. ``ChainIntegrityError`` names the first fault of the block itself;
    ``InvalidBlock`` / ``InvalidTransaction`` what ``apply`` refuses. Nothing is changed on error."""
    found = rules

    def seal_check(checked: Block) -> str | None:
        nonlocal found
        if checked.header.height == 0:
            try:
                found = genesis_seal_rules(checked)
            except InvalidBlock as err:
                return err.reason
        if found is None:
            return "no genesis rules to check its seal against"
        return seal_error(found, checked, sealed=sealed)

    signatures = check_block(block, head_hash, seal_check=seal_check)
    assert found is not None  # check_block called seal_check, which found the rules or failed
    return Judged(apply(state, block), found, block_hash(block), signatures)


__all__ = ["Apply", "Judged", "check_then_apply"]
