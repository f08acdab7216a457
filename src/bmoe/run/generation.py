"""A verified generation session in one process: a ledger whose genesis enrols the model (its trusted part and every
(layer, expert) slot by CID) and M edges, the edges themselves (each computing the model's experts, some lying),
and :class:`~bmoe.protocol.generation.decoding.VerifiedDecoding` on top, every chunk sealed in a block of its own.

Keys derive from the seed (a simulation: ``run/setup.derive_identities``). The chain (``chain.sqlite``) and the
store (``store/``) go to ``run_dir`` when one is given, so ``bmoe replay`` and ``bmoe audit`` can read them after;
else both stay in memory. The verification seed of chunk c is the SHA-256 of validator-0's signature over
``generation-check:{generation}:{c}``: deterministic (Ed25519 signs deterministically), so a seeded session seals
the same chain every time, and no edge can know before it answers which calls will be checked, or by whom.

Edges built elsewhere (``edges=``: processes reached over the network, ``net/generation``) bring their own keys,
which the genesis enrols instead.

Must not know: HTTP, the API, tokenizers.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bmoe.edge.attacks.expert_output import make_output_attack
from bmoe.edge.lm_runtime import swiglu_spec
from bmoe.ledger.chainstore import ChainStore
from bmoe.ledger.encoding import canonical_json
from bmoe.ledger.keys import Identity
from bmoe.ledger.node import LedgerNode, Signer
from bmoe.ledger.payments import pricing_of
from bmoe.ledger.transactions import tx_hash
from bmoe.lm.decoding.expert_calls import ModelExperts
from bmoe.lm.model import MoETransformer
from bmoe.protocol.generation.billing import ChunkUsage
from bmoe.protocol.generation.chunk import ChunkContext
from bmoe.protocol.generation.decoding import Recorder, SealedChunk, VerifiedDecoding
from bmoe.protocol.generation.edges import GenerationEdge, OutputAttack
from bmoe.protocol.generation.policy import ALL, CheckPolicy
from bmoe.protocol.lm.trusted import encode_trusted, expert_weights, trusted_weights
from bmoe.run.config import RunConfig
from bmoe.run.payments import PaymentTerms, Settle, settler
from bmoe.run.run_dir import CHAIN_FILE, STORE_DIR
from bmoe.run.setup import Identities, derive_identities, enrolled_identities, genesis_payload, signing
from bmoe.storage import BlobStore, DirectoryStore, MemoryStore, serialize_tensors

RECEIPTS_FILE = "receipts.jsonl"  # bmoe serve --verified: a line a response (receipt, prompt and completion text)
AttackFor = Callable[[int], OutputAttack | None]  # edge index -> its attack (None: honest)


@dataclass(frozen=True)
class GenerationSettings:
    """A session's settings."""

    edges: int = 5  # M
    replicas: int = 1  # r re-computing edges per checked call (ALL: every other edge)
    probability: float = 1.0  # a call is checked with this probability
    chunk_steps: int = 16  # decoding steps per verified chunk
    seed: int = 0
    stake: int = 0  # each edge's stake (0: no economics)
    max_batch: int = 16
    generation: str = "gen-0"  # the session's id on the ledger
    payments: PaymentTerms | None = None  # a paid session: its price rule and deposits (run/payments.py)

    def policy(self) -> CheckPolicy:
        return CheckPolicy(self.replicas, self.probability)

    def run_config(self, model: MoETransformer) -> RunConfig:
        """The genesis's settings: one slot per (layer, expert), M edges, one validator, PoW at difficulty 0."""
        config = model.config
        replicas = min(self.replicas, self.edges) if self.replicas < ALL else self.edges
        return RunConfig().replace(num_experts=config.num_slots, top_k=config.num_experts_per_tok,
                                   num_edges=self.edges, validators=1, seed=self.seed, difficulty=0,
                                   assignment="all" if replicas >= self.edges else "sampled",
                                   replicas=max(1, replicas), stake=self.stake, malicious_ratio=0.0)


@dataclass
class GenerationSession:
    """The ledger, the store, the edges and the verified decoding of one session."""

    settings: GenerationSettings
    node: LedgerNode
    store: BlobStore
    edges: list[GenerationEdge]
    decoding: VerifiedDecoding
    validator: Identity
    signer: Signer  # the validator's, counting its nonces: the session's other transactions sign with it too
    ledger_lock: threading.Lock = field(default_factory=threading.Lock)  # held while a block is built and sealed

    @property
    def head_hash(self) -> str:
        return self.node.head_hash


def attackers(model: MoETransformer, edges: int, count: int, kind: str, seed: int,
              probability: float = 1.0) -> AttackFor:
    """The last ``count`` of ``edges`` edges lie with attack ``kind`` (``edge/attacks/expert_output.py``), each with
    its own seeded attack striking a call with ``probability``; the others are honest."""
    if not 0 <= count <= edges:
        raise ValueError(f"{count} attackers among {edges} edges")
    made = {index: make_output_attack(kind, model, seed=seed * 1000 + index, probability=probability)
            for index in range(edges - count, edges)}
    return made.get


def model_objects(model: MoETransformer) -> tuple[bytes, list[bytes]]:
    """The model as the ledger names it: the trusted part (its manifest naming no tokenizer) and every slot's
    expert object, weights only (a served model has no optimiser state)."""
    config = model.config
    trusted = encode_trusted(trusted_weights(model), config, "")
    experts = [serialize_tensors(expert_weights(model, layer, expert))
               for layer in range(config.num_hidden_layers) for expert in range(config.num_local_experts)]
    return trusted, experts


def open_session(model: MoETransformer, settings: GenerationSettings, attack_for: AttackFor | None = None,
                 decode: Callable[[list[int]], str] | None = None, run_dir: Path | None = None,
                 edges: Sequence[GenerationEdge] | None = None) -> GenerationSession:
    """Write the genesis, build the edges, and start verified decoding. ``edges``: edges built elsewhere (processes
    reached over the network, ``net/generation``), one per ``settings.edges``, each with its own key, which the
    genesis enrols instead of seed-derived edge keys (``attack_for`` is then theirs to know)."""
    run = settings.run_config(model).validate()
    ids = derive_identities(run)
    if edges is not None:
        ids = _enrolling(run, ids, edges, attack_for)
    store: BlobStore = DirectoryStore(run_dir / STORE_DIR, batch=True) if run_dir is not None else MemoryStore()
    chain = ChainStore(run_dir / CHAIN_FILE) if run_dir is not None else None
    validator = signing(ids.validator)
    node = LedgerNode(validator, run.difficulty, chain)
    trusted, experts = model_objects(model)
    spec = swiglu_spec(model.config.hidden_size, model.config.intermediate_size)
    payload = genesis_payload(run, ids, spec, store.put(trusted), [store.put(data) for data in experts])
    if settings.payments is not None:
        payload["payments"] = settings.payments.section(settings.max_batch)
    signer = Signer(validator, node.next_nonce(validator.address))
    node.submit(signer.sign("genesis", payload))
    store.sync()
    node.seal(timestamp=0)
    if edges is None:
        edges = [GenerationEdge(signing(identity), ModelExperts(model), attack_for(index) if attack_for else None)
                 for index, identity in enumerate(ids.edges)]
    edges = list(edges)
    enrolled = [edge.address for edge in edges]
    context = ChunkContext(settings.generation, {edge.address: edge for edge in edges}, enrolled,
                           model.config.num_local_experts, settings.policy(), store)
    pricing = pricing_of(payload)
    settle = settler(pricing, store) if pricing is not None else None
    lock = threading.Lock()  # the decoding thread seals chunks; a server's event loop may seal quality verdicts
    decoding = VerifiedDecoding(model, context, _recorder(node, store, signer, lock, settle),
                                _chunk_seed(validator, settings), settings.seed, settings.chunk_steps, decode,
                                settings.max_batch)
    return GenerationSession(settings, node, store, edges, decoding, validator, signer, lock)


def session_validator(model: MoETransformer, settings: GenerationSettings) -> Identity:
    """The key the session of ``settings`` signs with (validator-0's, seed-derived): what edges built elsewhere
    must accept requests from."""
    return signing(derive_identities(settings.run_config(model).validate()).validator)


def _enrolling(run: RunConfig, ids: Identities, edges: Sequence[GenerationEdge],
               attack_for: AttackFor | None) -> Identities:
    """``ids`` with ``edges``' own keys as the edges (the publisher's and validators' stay seed-derived)."""
    if len(edges) != run.edges_in_play:
        raise ValueError(f"edges: {len(edges)} edges given for settings of {run.edges_in_play}")
    if attack_for is not None:
        raise ValueError("attack_for applies to the edges open_session builds, not to edges given")
    enrolled = {p.name: p.address for p in ids.everyone()} | {f"edge-{i}": e.address for i, e in enumerate(edges)}
    return enrolled_identities(run, enrolled, signing(ids.validator))


def _recorder(node: LedgerNode, store: BlobStore, signer: Signer, lock: threading.Lock,
              settle: Settle | None = None) -> Recorder:
    """Seal each chunk in a block of its own, with its settlement (``settle``: a paid session), under ``lock`` (a
    server's event loop may seal quality verdicts meanwhile)."""
    def record(payload: dict[str, Any], usage: ChunkUsage) -> SealedChunk:
        with lock:
            tx = signer.sign("generation_chunk", payload)
            node.submit(tx)
            settlement = settle(payload, usage) if settle is not None else None
            if settlement is not None:
                node.submit(signer.sign("settlement", settlement))
            store.sync()  # every object the block names is durable before it is sealed
            block = node.seal(timestamp=node.view().height + 1)
        assert block is not None
        return SealedChunk(payload["chunk"], block.header.height, tx_hash(tx), payload["records"], payload["tokens"],
                           payload["calls"], payload["checked"], len(payload["disputes"]),
                           len(payload["records_against"]), len(canonical_json(dict(payload))))
    return record


def _chunk_seed(validator: Identity, settings: GenerationSettings) -> Callable[[int], int]:
    def seed(chunk: int) -> int:
        signature = validator.sign(f"generation-check:{settings.generation}:{chunk}".encode("ascii"))
        return int(hashlib.sha256(bytes.fromhex(signature)).hexdigest()[:13], 16)  # < 2**52: exact in JSON
    return seed


__all__: Sequence[str] = ("GenerationSession", "GenerationSettings", "model_objects", "open_session",
                          "session_validator")
