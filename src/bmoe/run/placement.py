"""A verified generation session over a heterogeneous fleet: each edge holds only the expert slots placed on it.

:func:`open_placed_session` opens a generation session (``run/generation.py``) whose genesis enrols a pool of
``settings.edges`` edge keys; the edges of ``fleet`` (each an :class:`EdgeSpec`: the memory it gives expert weights,
its numeric profile, its measured throughput and its emulated network delay) declare their capability, each in a
``capability`` transaction it signs itself, and the validator records the placement the rule gives
(``ledger/placement.py``), in one block before any generation. Each edge then fetches its placed experts from the
store by CID (``protocol/generation/holdings.py``), and the chunk's calls, checks and disputes go only to a slot's
holders.

The fleet changes without stopping generation: :meth:`PlacedSession.join` gives an unused pool key a declaration
and :meth:`PlacedSession.leave` has an edge declare its departure; an edge that stops answering or is caught lying
is recorded gone by the validator. Each change is recorded between two chunks (at once when nothing is being
generated): the departures and declarations, then a new placement that keeps the current holders where they still
fit, in one block; the edges fetch what they newly hold, and the next chunk draws among the new holders.

Disputes need a quorum of a slot's holders (more than half), so ``holders_per_slot`` of 3 or more lets a chunk be
decided when one holder is gone or lies.

Must not know: HTTP, the API, tokenizers.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from bmoe.edge.fleet import DEFAULT
from bmoe.ledger.keys import Identity
from bmoe.ledger.node import Signer
from bmoe.ledger.placement import place
from bmoe.lm.decoding.expert_calls import ExpertCaller
from bmoe.lm.decoding.rows import stable_expert
from bmoe.lm.model import MoETransformer
from bmoe.protocol.generation.edges import GenerationEdge, OutputAttack
from bmoe.protocol.generation.holdings import PlacedExperts
from bmoe.run.generation import AttackFor, GenerationSession, GenerationSettings, open_session
from bmoe.run.setup import derive_identities, signing


@dataclass(frozen=True)
class EdgeSpec:
    """One device of the fleet."""

    memory: int  # bytes of expert weights it can hold
    profile: str = DEFAULT  # its numeric profile (edge/profiles.py)
    throughput: float = 0.0  # expert rows per second it measured (0: not measured; recorded, not placed by)
    delay: float = 0.0  # seconds each call it answers spends on the network (emulated: a geo-distributed edge)


class DistantEdge(GenerationEdge):
    """A generation edge whose every call (one layer's experts) first waits ``delay`` seconds: the round trip of
    an edge far away, emulated in-process. Commitments are signatures over digests the session already holds and
    are not delayed."""

    def __init__(self, identity: Identity, experts: ExpertCaller, attack: OutputAttack | None,
                 delay: float) -> None:
        super().__init__(identity, experts, attack)
        self.delay = delay
        self.calls = 0  # calls it answered (each one round trip)

    def compute(self, layer: int, routed: dict[int, torch.Tensor]) -> dict[int, torch.Tensor]:
        if self.delay > 0 and self.alive:
            time.sleep(self.delay)
        self.calls += self.alive
        return super().compute(layer, routed)


@dataclass
class PlacedSession:
    """A generation session over a fleet whose placement the ledger records."""

    session: GenerationSession
    holders_per_slot: int
    slot_bytes: list[int]  # each slot's expert object, in bytes
    pool: dict[str, DistantEdge]  # every enrolled edge, by address (active or not)
    holdings: dict[str, PlacedExperts]  # each pool edge's placed experts
    specs: dict[str, EdgeSpec] = field(default_factory=dict)  # the active edges' specs
    left: list[str] = field(default_factory=list)  # edges that left or were recorded gone
    _changes: list[tuple[str, str, EdgeSpec | None]] = field(default_factory=list)  # (join|leave, address, spec)

    @property
    def holders(self) -> list[list[str]]:
        """Each slot's holders under the placement in force."""
        return self.session.decoding.context.holders

    @property
    def epoch(self) -> int:
        return self.session.node.pending_view().fleet.epoch

    def fetched(self) -> dict[str, int]:
        """Bytes of expert weights each edge that ever held something fetched from the store."""
        return {address: h.bytes_fetched for address, h in self.holdings.items() if h.bytes_fetched}

    def join(self, spec: EdgeSpec) -> str:
        """An unused pool key joins with ``spec``: its declaration and a new placement, recorded at the end of the
        current chunk (at once when nothing is being generated). Its address."""
        taken = {*self.specs, *self.left, *(address for _, address, _ in self._changes)}
        address = next((a for a in self.pool if a not in taken), None)
        if address is None:
            raise ValueError(f"every one of the genesis's {len(self.pool)} edge keys is taken: enrol more edges")
        self._changes.append(("join", address, spec))
        self._apply_if_idle()
        return address

    def leave(self, address: str) -> None:
        """Active edge ``address`` leaves: its departure and a new placement, recorded as :meth:`join`'s are."""
        if address not in self.specs:
            raise ValueError(f"{address[:12]} is not an active edge")
        self._changes.append(("leave", address, None))
        self._apply_if_idle()

    def _apply_if_idle(self) -> None:
        if not self.session.decoding.busy:
            self.between_chunks()

    def between_chunks(self) -> None:
        """Record what changed since the last chunk (edges gone or accused, joins, leaves) and re-place."""
        decoding = self.session.decoding
        dropped = [a for a in [*decoding.stats.gone, *decoding.stats.accused] if a in self.specs]
        if not dropped and not self._changes:
            return
        with self.session.ledger_lock:  # one block: a server's event loop may seal quality verdicts meanwhile
            for address in dropped:  # recorded gone by the validator
                self.session.node.submit(self.session.signer.sign("departure", {"edge": address}))
                self._retire(address)
            changes, self._changes = self._changes, []
            for kind, address, spec in changes:
                edge = self.pool[address]
                if kind == "leave" and address in self.specs:
                    self._submit(edge.identity, "departure", {"edge": address})
                    self._retire(address)
                elif kind == "join" and spec is not None:
                    self._declare(address, spec)
                    if address not in decoding.serving:
                        decoding.serving.append(address)
            self._place()

    def _declare(self, address: str, spec: EdgeSpec) -> None:
        edge = self.pool[address]
        self._submit(edge.identity, "capability", {"memory": spec.memory, "profile": spec.profile,
                                                   "throughput": spec.throughput})
        self.specs[address] = spec
        self.holdings[address].memory = spec.memory
        edge.delay = spec.delay

    def _retire(self, address: str) -> None:
        self.specs.pop(address, None)
        self.left.append(address)
        serving = self.session.decoding.serving
        if address in serving:
            serving.remove(address)

    def _place(self) -> None:
        """The rule's placement over the declarations recorded so far, sealed with them (the caller holds the
        session's ledger lock); each edge fetches its newly placed experts."""
        node = self.session.node
        fleet = node.pending_view().fleet
        memory = {address: d.memory for address, d in fleet.declarations.items()}
        holders = place(memory, self.slot_bytes, self.holders_per_slot, fleet.holders)
        node.submit(self.session.signer.sign("placement", {"epoch": fleet.epoch + 1,
                                                           "holders_per_slot": self.holders_per_slot,
                                                           "slot_bytes": self.slot_bytes, "holders": holders}))
        self.session.store.sync()
        node.seal(timestamp=node.view().height + 1)
        self.holders[:] = holders  # in place: the chunk context and the fast path read this list
        cids = node.view().expert_cids
        for address, holding in self.holdings.items():
            slots = {slot: cids[slot] for slot, edges in enumerate(holders) if address in edges}
            if slots or holding.held:
                holding.hold(self.session.store, slots)

    def _submit(self, identity: Identity, kind: str, payload: dict[str, Any]) -> None:
        """An edge's own transaction (its declaration, its departure), signed with its key (the validator's go
        through the session's signer, which counts its nonces)."""
        node = self.session.node
        node.submit(Signer(identity, node.next_nonce(identity.address)).sign(kind, payload))


def measured_throughput(model: MoETransformer, rows: int = 64, repeats: int = 5) -> float:
    """Expert rows per second this process computes: the best of ``repeats`` timed calls of layer 0's expert 0 on
    ``rows`` seeded random rows (what an edge declares as its ``throughput``; a measurement, so not reproducible:
    a seeded session that must seal the same chain every time declares a fixed number instead)."""
    expert = model.layers[0].block_sparse_moe.experts[0]
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(rows, model.config.hidden_size, generator=generator)  # (rows, d)
    best = float("inf")
    with torch.no_grad():
        for _ in range(repeats):
            start = time.perf_counter()
            stable_expert(expert, x)
            best = min(best, time.perf_counter() - start)
    return round(rows / max(best, 1e-9), 1)


def open_placed_session(model: MoETransformer, settings: GenerationSettings, fleet: Sequence[EdgeSpec],
                        holders_per_slot: int = 3, attack_for: AttackFor | None = None,
                        decode: Callable[[list[int]], str] | None = None,
                        run_dir: Path | None = None) -> PlacedSession:
    """A session whose first ``len(fleet)`` pool edges (of ``settings.edges``, the rest free to join) declare
    ``fleet`` and hold what the placement gives them; ``attack_for(index)``: pool edge ``index``'s attack."""
    if not fleet or len(fleet) > settings.edges:
        raise ValueError(f"a fleet of {len(fleet)} edges for a pool of {settings.edges} enrolled edge keys")
    config = model.config
    identities = derive_identities(settings.run_config(model).validate()).edges
    holdings = {identity.address: PlacedExperts(identity.address, config.hidden_size, config.intermediate_size,
                                                config.num_local_experts, 0) for identity in identities}
    pool = {identity.address: DistantEdge(signing(identity), holdings[identity.address],
                                          attack_for(index) if attack_for else None, 0.0)
            for index, identity in enumerate(identities)}
    session = open_session(model, settings, decode=decode, run_dir=run_dir, edges=list(pool.values()))
    slot_bytes = [len(session.store.get(cid)) for cid in session.node.view().expert_cids]
    placed = PlacedSession(session, holders_per_slot, slot_bytes, pool, holdings)
    session.decoding.between_chunks = placed.between_chunks
    with session.ledger_lock:
        for address, spec in zip(pool, fleet, strict=False):
            placed._declare(address, spec)
        placed._place()
    return placed


__all__: Sequence[str] = ("DistantEdge", "EdgeSpec", "PlacedSession", "measured_throughput", "open_placed_session")
