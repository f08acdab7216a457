"""Builders and checks shared by the consensus tests: small networks, payloads, safety assertions."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping

from bmoe.consensus.byzantine import TAMPER_MARK, permissive
from bmoe.consensus.engine import ConsensusReplica
from bmoe.consensus.pbft import PbftConfig, PbftReplica
from bmoe.consensus.sim import Delay, Simulator
from bmoe.experiments.pow_network.blocks import Block, Header, NonceSearch, sign_block
from bmoe.experiments.pow_network.miner import PowConfig, PowMiner
from bmoe.ledger.encoding import sha256_hex
from bmoe.ledger.keys import Identity, derive_identity

SEED = 7

# wraps an attacker's honest replica: (inner, identity, validators) -> replica
Wrap = Callable[[ConsensusReplica, Identity, dict[str, str]], ConsensusReplica]


def honest_validate(height: int, payload: bytes) -> str | None:
    """The host's check in tests: a tampered block is refused, anything else accepted."""
    if TAMPER_MARK in payload:
        return "payload was tampered with"
    return None


def payloads(count: int, prefix: str = "block") -> list[bytes]:
    return [f"{prefix}-{i}".encode() for i in range(count)]


def identities(prefix: str, n: int, seed: int = SEED) -> list[Identity]:
    return [derive_identity(seed, f"{prefix}{i}") for i in range(n)]


def pbft_network(
    n: int,
    byzantine: Mapping[str, Wrap] | None = None,
    *,
    seed: int = SEED,
    delay: Delay = (0.01, 0.03),
    drop: float = 0.0,
    config: PbftConfig | None = None,
    keep_trace: bool = False,
) -> tuple[Simulator, list[str]]:
    """``n`` replicas r0..r{n-1}; those in ``byzantine`` are wrapped (and validate nothing). Returns honest names."""
    byzantine = dict(byzantine or {})
    ids = identities("r", n)
    validators = {i.name: i.address for i in ids}
    replicas: list[ConsensusReplica] = []
    for identity in ids:
        if identity.name in byzantine:
            inner = PbftReplica(identity, validators, permissive, config)
            replicas.append(byzantine[identity.name](inner, identity, validators))
        else:
            replicas.append(PbftReplica(identity, validators, honest_validate, config))
    sim = Simulator(replicas, seed=seed, delay=delay, drop=drop, keep_trace=keep_trace)
    return sim, [i.name for i in ids if i.name not in byzantine]


def pow_network(
    shares: Mapping[str, float],
    *,
    config: PowConfig,
    seed: int = SEED,
    delay: Delay = (0.02, 0.08),
    build: Mapping[str, Callable[[Identity, dict[str, str], float, PowConfig], ConsensusReplica]] | None = None,
) -> Simulator:
    """Miners with the given hash-power shares; ``build`` overrides how a miner is made (attackers).

    The chain id (so every block hash) depends on ``seed``: different seeds are independent mining races.
    """
    config = dataclasses.replace(config, chain_id=f"{config.chain_id}|{seed}")
    ids = [derive_identity(seed, name) for name in shares]
    miners = {i.name: i.address for i in ids}
    build = dict(build or {})
    replicas: list[ConsensusReplica] = []
    for identity in ids:
        share = shares[identity.name]
        if identity.name in build:
            replicas.append(build[identity.name](identity, miners, share, config))
        else:
            replicas.append(PowMiner(identity, miners, honest_validate, share, config))
    return Simulator(replicas, seed=seed, delay=delay)


def all_committed(names: Iterable[str], count: int) -> Callable[[Simulator], bool]:
    names = list(names)
    return lambda sim: all(len(sim.committed[n]) >= count for n in names)


def assert_safe(sim: Simulator, honest: Iterable[str]) -> None:
    """Honest replicas report heights 1, 2, 3, ... once each, and agree wherever both reported."""
    chains = {n: sim.chain(n) for n in honest}
    for name, chain in chains.items():
        assert [h for h, _ in chain] == list(range(1, len(chain) + 1)), f"{name} reported heights out of order"
    longest = max(chains.values(), key=len)
    for name, chain in chains.items():
        assert chain == longest[: len(chain)], f"{name} disagrees with another honest replica"


def committed_payloads(sim: Simulator, name: str) -> list[bytes]:
    return [c.payload for c in sim.committed[name]]


def mine_block(identity: Identity, parent: str, height: int, payload: bytes, difficulty: int,
               evidence: tuple[Block, ...] = ()) -> Block:
    """Mine and sign a block by hand (unit tests of the chain rules)."""
    header = Header(height, parent, sha256_hex(payload), identity.name, 0, difficulty, tuple(e.hash for e in evidence))
    solved, _ = NonceSearch(header).attempt(1 << 24)
    assert solved is not None
    return sign_block(identity, solved, payload, evidence)
