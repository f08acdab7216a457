"""Setting up a run: keys, initial weights, genesis, edges with their behaviours.

Everything here is a function of the config's seed: the same config gives the same keys, the
same initial gate and experts (so the same CIDs) and the same genesis block.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from bmoe.edge.behaviour import EdgeBehaviour, make_behaviour
from bmoe.edge.profiles import NumericProfile, get_profile
from bmoe.edge.runtime import ExpertRuntime
from bmoe.edge.worker import EdgeWorker
from bmoe.ledger.blocks import Block
from bmoe.ledger.keys import Identity, derive_identity
from bmoe.ledger.node import LedgerNode, Signer
from bmoe.moe.experts import ExpertFactory, ExpertSpec, build_expert
from bmoe.moe.gate import LinearGate
from bmoe.protocol.config import ConfigError, RunConfig
from bmoe.storage import BlobStore, serialize_tensors
from bmoe.verify.acceptance import AcceptanceRule


@dataclass(frozen=True)
class Identities:
    publisher: Identity
    validators: tuple[Identity, ...]  # validator-0 proposes under PoW; PBFT rotates the primary
    edges: tuple[Identity, ...]

    @property
    def validator(self) -> Identity:
        return self.validators[0]


def derive_identities(config: RunConfig) -> Identities:
    edges = tuple(derive_identity(config.seed, f"edge-{i}") for i in range(config.edges_in_play))
    validators = tuple(derive_identity(config.seed, f"validator-{i}") for i in range(config.validators))
    return Identities(derive_identity(config.seed, "publisher"), validators, edges)


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
    framework_traditional = config.framework == "traditional"
    rule = AcceptanceRule("sole") if framework_traditional else AcceptanceRule(config.rule, config.rule_fraction)
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
                "f": (config.validators - 1) // 3}
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
    return node.seal(timestamp=0)


def in_process_profiles(config: RunConfig) -> list[NumericProfile]:
    """Each edge's numeric profile; refuses one that only an edge process can honour (environment variables)."""
    profiles = [get_profile(name) for name in config.edge_profiles]
    for profile in profiles:
        if not profile.in_process:
            raise ConfigError(f"fleet profile {profile.name} sets {', '.join(k for k, _ in profile.env)} before "
                              "torch loads, which only an edge process can do: use it with bmoe cluster up --fleet")
    return profiles


def edge_runtimes(config: RunConfig, store: BlobStore, spec: ExpertSpec,
                  factory: ExpertFactory | None) -> list[ExpertRuntime]:
    """One runtime per edge, computing under the edge's numeric profile. With ``share_compute`` the
    edges of one profile share one runtime (one memo), else every edge has its own."""
    shared: dict[str, ExpertRuntime] = {}
    runtimes = []
    for profile in in_process_profiles(config):
        runtime = shared.get(profile.name) if config.share_compute else None
        if runtime is None:
            runtime = ExpertRuntime(store, spec, factory, profile)
            if config.share_compute:
                shared[profile.name] = runtime
        runtimes.append(runtime)
    return runtimes


def distinct(runtimes: list[ExpertRuntime]) -> list[ExpertRuntime]:
    return list({id(runtime): runtime for runtime in runtimes}.values())


def make_edges(config: RunConfig, ids: Identities, node: LedgerNode, store: BlobStore, spec: ExpertSpec,
               factory: ExpertFactory | None) -> tuple[list[EdgeWorker], list[ExpertRuntime]]:
    """The edge workers, each with its runtime (:func:`edge_runtimes`), and the distinct runtimes."""
    runtimes = edge_runtimes(config, store, spec, factory)
    edges = []
    for index, (identity, behaviour) in enumerate(zip(ids.edges, behaviours(config), strict=True)):
        signer = Signer(identity, node.next_nonce(identity.address))
        edges.append(EdgeWorker(index, signer, behaviour, runtimes[index], store, config.seed, config.collude))
    return edges, distinct(runtimes)
