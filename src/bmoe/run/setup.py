"""Setting up a run: keys, initial weights, genesis, edges with their behaviours.

Everything here is a function of the config's seed and the participants' keys: the same config
gives the same initial gate and experts (so the same CIDs). An in-process run derives every key
from the seed (:func:`derive_identities`, a reproducible simulation: same config, same genesis
block); a deployment's genesis enrols the public keys its participants hold
(:func:`enrolled_identities`) and records ``"keys": "enrolled"``, so anyone reading it knows that
the seed does not give away the keys. A genesis without that field has seed-derived keys.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch

from bmoe.consensus.pbft_rules import max_faulty
from bmoe.edge.behaviour import EdgeBehaviour, make_behaviour
from bmoe.edge.profiles import NumericProfile, get_profile
from bmoe.edge.runtime import ExpertRuntime
from bmoe.edge.worker import EdgeWorker
from bmoe.ledger.blocks import Block
from bmoe.ledger.keys import ENROLLED_KEYS, Identity, PublicIdentity, derive_identity
from bmoe.ledger.node import LedgerNode, Signer
from bmoe.moe.experts import ExpertFactory, ExpertSpec, build_expert
from bmoe.moe.gate import LinearGate
from bmoe.run.config import ConfigError, RunConfig
from bmoe.storage import BlobStore, serialize_tensors
from bmoe.verify.acceptance import AcceptanceRule
from bmoe.verify.framework import framework_of

Participant = Identity | PublicIdentity  # a key this process holds, or only its public half


@dataclass(frozen=True)
class Identities:
    """The run's participants in genesis order. ``seeded``: every key is derived from the config's seed
    (in-process runs, ``bmoe cluster up --seeded-keys``); else they are enrolled public keys, and this
    process holds (as an :class:`Identity`) at most its own."""

    publisher: Participant
    validators: tuple[Participant, ...]  # validator-0 proposes under PoW; PBFT rotates the primary
    edges: tuple[Participant, ...]
    seeded: bool = True

    @property
    def validator(self) -> Participant:
        return self.validators[0]

    def everyone(self) -> tuple[Participant, ...]:
        return (self.publisher, *self.validators, *self.edges)


def participant_names(config: RunConfig) -> list[str]:
    """The names a run's genesis enrols, in its order: ``publisher``, ``validator-I``, ``edge-I``."""
    return ["publisher", *(f"validator-{i}" for i in range(config.validators)),
            *(f"edge-{i}" for i in range(config.edges_in_play))]


def derive_identities(config: RunConfig) -> Identities:
    """Every participant's key from the config's seed: reproducible, and known to anyone who knows the seed."""
    edges = tuple(derive_identity(config.seed, f"edge-{i}") for i in range(config.edges_in_play))
    validators = tuple(derive_identity(config.seed, f"validator-{i}") for i in range(config.validators))
    return Identities(derive_identity(config.seed, "publisher"), validators, edges)


def enrolled_identities(config: RunConfig, enrolled: Mapping[str, str], own: Identity | None = None) -> Identities:
    """The participants an enrolment (name -> address) names, with ``own``, the key this process holds,
    under the name its address is enrolled as.

    Every name of :func:`participant_names` must be enrolled (others, such as storage nodes, may be too);
    ``own`` must be enrolled. ``seeded`` when every address is the one the seed derives."""
    missing = [name for name in participant_names(config) if name not in enrolled]
    if missing:
        raise ConfigError(f"the enrolment does not name {', '.join(missing)}: a run of these settings has them")
    own_name = next((name for name, address in enrolled.items() if own is not None and address == own.address), None)
    if own is not None and own_name is None:
        raise ConfigError(f"the key given ({own.address[:16]}...) is nobody's in the enrolment: each participant "
                          "runs with its own, enrolled key")

    def party(name: str) -> Participant:
        if own is not None and name == own_name:
            return Identity(name, own.signing_key)
        return PublicIdentity(name, enrolled[name])

    derived = derive_identities(config)
    ids = Identities(party("publisher"), tuple(party(f"validator-{i}") for i in range(config.validators)),
                     tuple(party(f"edge-{i}") for i in range(config.edges_in_play)))
    seeded = [p.address for p in ids.everyone()] == [p.address for p in derived.everyone()]
    return dataclasses.replace(ids, seeded=seeded)


def held_name(ids: Identities) -> str | None:
    """The name of the one participant whose key ``ids`` holds (None: none, or a simulation holding all)."""
    held = [p.name for p in ids.everyone() if isinstance(p, Identity)]
    return held[0] if len(held) == 1 else None


def signing(participant: Participant) -> Identity:
    """``participant``'s key, which this process must hold (a one-line :class:`ConfigError` if it does not)."""
    if not isinstance(participant, Identity):
        raise ConfigError(f"this process does not hold {participant.name}'s key (its owner does)")
    return participant


def behaviours(config: RunConfig) -> list[EdgeBehaviour]:
    """Honest edges first, the last ``config.malicious_edges`` run the configured attack."""
    honest = config.edges_in_play - config.malicious_edges
    attack_params = dict(config.attack_params)
    return [make_behaviour("honest") if i < honest else make_behaviour(config.attack, **attack_params)
            for i in range(config.edges_in_play)]


def initial_weights(config: RunConfig, spec: ExpertSpec, input_dim: int,
                    factory: ExpertFactory | None) -> tuple[dict[str, torch.Tensor], list[dict[str, torch.Tensor]]]:
    """The gate's and the experts' initial weights, drawn from the config's seed."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        gate = LinearGate(input_dim, config.num_experts)
        experts = [build_expert(spec, factory) for _ in range(config.num_experts)]
    return ({k: v.detach().clone() for k, v in gate.state_dict().items()},
            [{k: v.detach().clone() for k, v in e.state_dict().items()} for e in experts])


def genesis_payload(config: RunConfig, ids: Identities, spec: ExpertSpec, gate_cid: str,
                    expert_cids: list[str]) -> dict[str, object]:
    fixed_rule = framework_of(config.framework).rule
    rule = AcceptanceRule(fixed_rule) if fixed_rule else AcceptanceRule(config.rule, config.rule_fraction)
    payload: dict[str, object] = {
        "framework": config.framework,
        "config_hash": config.hash(),
        "num_experts": config.num_experts,
        "top_k": config.top_k,
        "lr": config.lr,  # the validators re-execute the gate update with these
        "balance": config.balance,
        "edges": [edge.address for edge in ids.edges],
        "validators": [v.address for v in ids.validators],
        "consensus": consensus_section(config, ids),
        "publisher": ids.publisher.address,
        "assignment": config.assignment_spec(),
        "rule": rule.to_dict(),
        "comparison": config.comparison_spec(),
        "expert_spec": spec.to_dict(),
        "gate_cid": gate_cid,
        "expert_cids": expert_cids,
    }
    if not ids.seeded:  # absent: every key derives from the seed (what every genesis before this field meant)
        payload["keys"] = ENROLLED_KEYS
    economics = config.economics_spec([edge.address for edge in ids.edges])
    if economics is not None:
        payload["economics"] = economics
    payload.update(config.bound_genesis())  # the comparison, and the calibration when the bounds were checked
    return payload


ConsensusSection = Callable[[dict[str, object]], dict[str, object]]  # genesis payload -> its consensus section


def consensus_section(config: RunConfig, ids: Identities) -> dict[str, object]:
    """What an auditor needs to check every block's consensus proof (Ethereum: only the engine until the
    contract is deployed; ``write_genesis``'s ``consensus`` gives the whole section)."""
    if config.consensus == "ethereum":
        return {"engine": "ethereum"}
    if config.consensus == "pbft":
        return {"engine": "pbft", "validators": {v.name: v.address for v in ids.validators},
                "f": max_faulty(config.validators)}
    return {"engine": "pow", "difficulty": config.difficulty}


def write_genesis(node: LedgerNode, store: BlobStore, config: RunConfig, ids: Identities, spec: ExpertSpec,
                  input_dim: int, factory: ExpertFactory | None, validator: Signer,
                  consensus: ConsensusSection | None = None) -> Block | None:
    """Block 0. Under every engine it is mined by validator-0 alone: the founding block that all
    participants accept by definition (the engine seals every block after it). ``consensus``: for an engine
    whose section depends on the enrolment (Ethereum deploys its contract), the section for this payload."""
    gate_weights, expert_weights = initial_weights(config, spec, input_dim, factory)
    gate_cid = store.put(serialize_tensors(gate_weights))
    expert_cids = [store.put(serialize_tensors(w)) for w in expert_weights]
    payload = genesis_payload(config, ids, spec, gate_cid, expert_cids)
    if consensus is not None:
        payload["consensus"] = consensus(payload)
    node.submit(validator.sign("genesis", payload))
    store.sync()  # the genesis's objects durable before its block is sealed
    return node.seal(timestamp=0)


def in_process_profiles(config: RunConfig) -> list[NumericProfile]:
    """Each edge's numeric profile; refuses one that only an edge process can honour (environment variables)."""
    profiles = [get_profile(name) for name in config.edge_profiles]
    for profile in profiles:
        if not profile.in_process:
            raise ConfigError(f"fleet profile {profile.name} sets {', '.join(k for k, _ in profile.env)} before "
                              "torch loads, which only an edge process can do: use it with bmoe cluster up --fleet")
    return profiles


RuntimeFactory = Callable[[BlobStore, ExpertSpec, NumericProfile], ExpertRuntime]  # a language model's, say


def edge_runtimes(config: RunConfig, store: BlobStore, spec: ExpertSpec, factory: ExpertFactory | None,
                  make_runtime: RuntimeFactory | None = None) -> list[ExpertRuntime]:
    """One runtime per edge, computing under the edge's numeric profile (an :class:`ExpertRuntime`, or what
    ``make_runtime`` makes). With ``share_compute`` the edges of one profile share one runtime (one memo), else
    every edge has its own."""
    shared: dict[str, ExpertRuntime] = {}
    runtimes = []
    for profile in in_process_profiles(config):
        runtime = shared.get(profile.name) if config.share_compute else None
        if runtime is None:
            runtime = (ExpertRuntime(store, spec, factory, profile) if make_runtime is None
                       else make_runtime(store, spec, profile))
            if config.share_compute:
                shared[profile.name] = runtime
        runtimes.append(runtime)
    return runtimes


def distinct(runtimes: list[ExpertRuntime]) -> list[ExpertRuntime]:
    return list({id(runtime): runtime for runtime in runtimes}.values())


def make_edges(config: RunConfig, ids: Identities, node: LedgerNode, store: BlobStore, spec: ExpertSpec,
               factory: ExpertFactory | None, make_runtime: RuntimeFactory | None = None) -> tuple[
                   list[EdgeWorker], list[ExpertRuntime]]:
    """The edge workers, each with its runtime (:func:`edge_runtimes`), and the distinct runtimes."""
    runtimes = edge_runtimes(config, store, spec, factory, make_runtime)
    edges = []
    for index, (identity, behaviour) in enumerate(zip(ids.edges, behaviours(config), strict=True)):
        signer = Signer(identity, node.next_nonce(identity.address))
        edges.append(EdgeWorker(index, signer, behaviour, runtimes[index], store, config.seed, config.collude))
    return edges, distinct(runtimes)
