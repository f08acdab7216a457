"""Sealing engines: how a block is sealed and how anyone checks the seal, one module per engine.

Owns the registry. An engine is one file (``pow``, ``pbft``, ``ethereum``) plus one entry in
:data:`SEALING_ENGINES`; nothing else in the ledger branches on the engine's name. An engine reads
its parameters from the genesis's ``consensus`` section (:meth:`SealingEngine.rules`, which refuses a
malformed section) and then judges every sealed block after block 0 (:meth:`EngineRules.block_error`:
the declared difficulty and its proof of work, a commit certificate, a contract's receipt).

What every engine shares (block 0 is mined by the genesis signer; the proposer is a genesis validator;
the header names the genesis's engine) is ``seal_rules``. *Producing* a seal stays with the host that
runs the engine: a PoW miner in-process, the PBFT cluster or network replica, a contract client.
Must not know: tensors, the round, sockets.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from bmoe.ledger.blocks import CONSENSUS_KINDS, Block
from bmoe.ledger.sealing.ethereum import ETHEREUM_ENGINE
from bmoe.ledger.sealing.pbft import PBFT_ENGINE
from bmoe.ledger.sealing.pow import POW_ENGINE


class EngineRules(Protocol):
    """What a genesis's ``consensus`` section fixes for one engine, applied to each sealed block."""

    def block_error(self, block: Block) -> str | None:
        """Why ``block``'s (height ≥ 1) engine-specific seal is invalid, or None."""
        ...

    def describe(self, validators: int) -> str:
        """One line for reports: the engine and its parameters."""
        ...


class SealingEngine(Protocol):
    """One consensus engine a chain may be sealed by."""

    name: str

    def rules(self, section: Mapping[str, Any], validators: frozenset[str]) -> EngineRules:
        """The rules ``section`` fixes; raises ``ValueError`` naming what is malformed."""
        ...


SEALING_ENGINES: dict[str, SealingEngine] = {e.name: e for e in (POW_ENGINE, PBFT_ENGINE, ETHEREUM_ENGINE)}
assert tuple(SEALING_ENGINES) == CONSENSUS_KINDS, "blocks.CONSENSUS_KINDS must name exactly the sealing engines"


def engine_rules(section: Mapping[str, Any], validators: frozenset[str]) -> tuple[str, EngineRules]:
    """The engine a genesis's ``consensus`` section names, and its rules; ``ValueError`` if malformed."""
    name = section.get("engine")
    engine = SEALING_ENGINES.get(name) if isinstance(name, str) else None
    if engine is None:
        raise ValueError(f"consensus section must name an engine in {tuple(SEALING_ENGINES)}")
    return engine.name, engine.rules(section, validators)


DEPLOYED_PBFT_MIN = 4  # n = 3f + 1 with f >= 1: a PBFT group of processes survives one faulty validator
SINGLE_VALIDATOR_ENGINES = ("pow", "ethereum")  # one proposer mines, or one account seals through the contract


def validators_supported(consensus: str, validators: int, *, one_process_each: bool = False) -> bool:
    """Whether ``consensus`` seals with ``validators`` validators: PoW and Ethereum with exactly one, PBFT
    with any number in one process and with ``DEPLOYED_PBFT_MIN`` or more when each validator is its own
    process (a deployment)."""
    if consensus == "pbft":
        return validators >= (DEPLOYED_PBFT_MIN if one_process_each else 1)
    return consensus in SINGLE_VALIDATOR_ENGINES and validators == 1


__all__ = ["DEPLOYED_PBFT_MIN", "SEALING_ENGINES", "EngineRules", "SealingEngine", "engine_rules",
           "validators_supported"]
