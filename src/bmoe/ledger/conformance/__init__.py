"""Conformance vectors: the behaviour every :class:`~bmoe.ledger.port.Ledger` backend must reproduce.

Owns the vector format and the runner. A vector (``vectors/*.json``) is a seed, the participant names
whose keys derive from it, and blocks of transaction *templates*: who signs, the kind, the payload with
every participant's address written ``@name`` and the genesis's consensus section written
``"@consensus"`` (each backend seals by its own engine and states its own section). An item may expect a
refusal (``"refused"``: the exact reason), carry a nonce offset from the signer's next nonce
(``"nonce_offset"``) or a corrupted signature (``"corrupt_signature"``). After each block the backend's
sealed state must equal the recorded ``summary`` and ``state_root`` exactly.

The state root does not depend on the engine (nor on block hashes) under the policies the vectors use
(``all``; a sampled policy draws from the head hash, which each engine seals differently), so one set of
vectors judges every backend. ``tools/make_conformance_vectors.py`` records them from the reference
backend, ``LedgerNode``; a backend passes when :func:`run_vector` returns no failure for each.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from bmoe.ledger.keys import Identity, derive_identity
from bmoe.ledger.port import Ledger
from bmoe.ledger.state import state_root
from bmoe.ledger.transactions import Transaction, sign_transaction

CONSENSUS_PLACEHOLDER = "@consensus"

# (proposer, the genesis payload without its consensus section) -> (a fresh backend, its consensus section)
LedgerFactory = Callable[[Identity, dict[str, Any]], tuple[Ledger, dict[str, Any]]]


@dataclass
class VectorResult:
    name: str
    blocks: int = 0
    refusals: int = 0
    failures: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.failures


def load_vectors() -> list[dict[str, Any]]:
    """Every vector shipped with bmoe, by file name."""
    folder = resources.files(__package__).joinpath("vectors")
    return [json.loads(entry.read_text()) for entry in sorted(folder.iterdir(), key=lambda e: e.name)
            if entry.name.endswith(".json")]


def substitute(value: Any, names: dict[str, str]) -> Any:
    """``value`` with every ``@name`` string (and dict key) replaced by ``names[@name]``."""
    if isinstance(value, str):
        return names.get(value, value)
    if isinstance(value, list):
        return [substitute(item, names) for item in value]
    if isinstance(value, dict):
        return {names.get(k, k): substitute(v, names) for k, v in value.items()}
    return value


def sign_item(item: dict[str, Any], identities: dict[str, Identity], names: dict[str, Any], nonce: int) -> Transaction:
    """The transaction a vector's ``item`` describes, signed by its signer with ``nonce`` (plus any offset)."""
    tx = sign_transaction(identities[item["signer"]], item["kind"], substitute(item["payload"], names),
                          nonce + int(item.get("nonce_offset", 0)))
    if item.get("corrupt_signature"):
        flipped = ("0" if tx.signature[0] != "0" else "1") + tx.signature[1:]
        tx = Transaction(tx.kind, tx.sender, tx.nonce, tx.payload, flipped)
    return tx


def _genesis(vector: dict[str, Any], names: dict[str, str]) -> dict[str, Any]:
    first = vector["blocks"][0]["transactions"][0]
    if first["kind"] != "genesis":
        raise ValueError(f"vector {vector['name']}: block 0 must open with the genesis")
    return {k: v for k, v in substitute(first["payload"], names).items() if k != "consensus"}


def open_vector(vector: dict[str, Any], make_ledger: LedgerFactory) -> tuple[Ledger, dict[str, Identity],
                                                                            dict[str, Any]]:
    """A fresh backend for ``vector``: (ledger, identities by name, placeholder substitutions)."""
    identities = {name: derive_identity(int(vector["seed"]), name) for name in vector["names"]}
    names: dict[str, Any] = {f"@{name}": identity.address for name, identity in identities.items()}
    ledger, section = make_ledger(identities[vector["proposer"]], _genesis(vector, names))
    names[CONSENSUS_PLACEHOLDER] = section
    return ledger, identities, names


def run_vector(vector: dict[str, Any], make_ledger: LedgerFactory) -> VectorResult:
    """Replay ``vector`` on a fresh backend from ``make_ledger``; every disagreement is a failure."""
    result = VectorResult(vector["name"])
    ledger, identities, names = open_vector(vector, make_ledger)
    for height, block in enumerate(vector["blocks"]):
        for index, item in enumerate(block["transactions"]):
            where = f"block {height}, transaction {index} ({item['kind']} by {item['signer']})"
            tx = sign_item(item, identities, names, ledger.next_nonce(identities[item["signer"]].address))
            reason = ledger.check(tx)
            expected = item.get("refused")
            if expected is not None:
                result.refusals += 1
                if reason != expected:
                    result.failures.append(f"{where}: expected refusal {expected!r}, got {reason!r}")
                continue
            if reason is not None:
                result.failures.append(f"{where}: refused ({reason}), expected accepted")
                return result
            ledger.submit(tx)
        ledger.seal(int(block["timestamp"]))
        result.blocks += 1
        state = ledger.view()
        summary = json.loads(json.dumps(state.summary()))
        if summary != block["summary"]:
            different = sorted(k for k in set(summary) | set(block["summary"])
                               if summary.get(k) != block["summary"].get(k))
            result.failures.append(f"block {height}: state summary differs in {', '.join(different)}")
        if state_root(state) != block["state_root"]:
            result.failures.append(f"block {height}: state root {state_root(state)} != {block['state_root']}")
        if result.failures:
            return result
    return result


def iter_results(make_ledger: LedgerFactory) -> Iterator[VectorResult]:
    """Run every shipped vector on fresh backends from ``make_ledger``."""
    for vector in load_vectors():
        yield run_vector(vector, make_ledger)


__all__ = ["CONSENSUS_PLACEHOLDER", "LedgerFactory", "VectorResult", "iter_results", "load_vectors", "open_vector",
           "run_vector", "sign_item", "substitute"]
