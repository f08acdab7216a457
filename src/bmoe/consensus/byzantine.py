"""Byzantine behaviours as plug-ins wrapping an honest replica (like ``bmoe.edge.behaviour``).

Owns the attacks the tests and PBFT-sealed runs use: each wraps an honest replica and rewrites what
goes in or out, so the protocol code has no attack paths in it and a new attack is one class here.

Generic (any ``ConsensusReplica``): ``Silent`` (withholds every message), ``Garbage`` (adds random and
malformed bytes), ``Replay`` (re-sends old messages), ``TamperProposals`` (proposes / mines a
modified payload). PBFT: ``TamperVotes`` (prepares and commits a modified digest), ``Equivocate``
(different pre-prepares and votes to two halves of the honest replicas, in collusion). The
multi-miner PoW experiment's own attack, ``WithholdingMiner``, is in
``bmoe.experiments.pow_network.withholding``.

Randomness comes from ``random.Random`` seeded by (seed, name): the same run, the same attack.
The wrapped replica's ``validate`` is the attacker's business; tests give attackers one that
accepts everything. Must not know: protocol internals beyond the public message formats.
"""

from __future__ import annotations

import json
import random
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

from bmoe.consensus.engine import (
    Action,
    ConsensusReplica,
    Deliver,
    Event,
    Propose,
    Rejected,
    ReplicaStats,
    Send,
    Tick,
)
from bmoe.consensus.pbft_messages import (
    DOMAIN,
    PRE_PREPARE,
    VOTE_KINDS,
    VoteMessage,
    encode_vote,
    parse_message,
    sign_vote,
)
from bmoe.consensus.wire import SignatureChecker
from bmoe.ledger.encoding import canonical_json, sha256_hex
from bmoe.ledger.keys import Identity

TAMPER_MARK = b"|TAMPERED"
VARIANT_MARK = b"|equivocation"


def tamper(payload: bytes) -> bytes:
    """The default manipulation: a payload an honest ``validate`` will refuse (tests look for the mark)."""
    return payload + TAMPER_MARK


def variant(payload: bytes) -> bytes:
    """A different payload an honest ``validate`` accepts: the other half of an equivocation."""
    return payload + VARIANT_MARK


def permissive(height: int, payload: bytes) -> str | None:
    """An attacker's ``validate``: everything goes."""
    return None


class Behaviour:
    """The honest pass-through. Subclasses override ``incoming`` and/or ``outgoing``."""

    label: ClassVar[str] = "honest"

    def __init__(self, inner: ConsensusReplica) -> None:
        self.inner = inner

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def stats(self) -> ReplicaStats:
        return self.inner.stats

    def __getattr__(self, attribute: str) -> Any:  # tests may read the wrapped replica's state
        if attribute == "inner":
            raise AttributeError(attribute)
        return getattr(self.inner, attribute)

    def handle(self, event: Event) -> list[Action]:
        changed = self.incoming(event)
        actions = [] if changed is None else self.inner.handle(changed)
        return self.outgoing(event, actions)

    def incoming(self, event: Event) -> Event | None:
        """The event the inner replica sees (``None``: it sees nothing)."""
        return event

    def outgoing(self, event: Event, actions: list[Action]) -> list[Action]:
        """What actually leaves the replica."""
        return actions


def _rng(seed: int, name: str, label: str) -> random.Random:
    return random.Random(f"bmoe-byzantine|{seed}|{name}|{label}")


class _Bursts:
    """At most one burst per ``interval`` of the replica's clock (so two attackers cannot echo each other
    into an endless storm)."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self.next_at = 0.0

    def due(self, event: Event) -> bool:
        if isinstance(event, Tick) and event.now >= self.next_at:
            self.next_at = event.now + self.interval
            return True
        return False


class Silent(Behaviour):
    """Withholds every message (a crashed or mute replica that still thinks it participates)."""

    label = "silent"

    def outgoing(self, event: Event, actions: list[Action]) -> list[Action]:
        return [a for a in actions if not isinstance(a, Send)]


class Garbage(Behaviour):
    """Every ``interval`` sends ``per_burst`` hostile messages to random peers, besides (or instead of) its own."""

    label = "garbage"

    def __init__(self, inner: ConsensusReplica, peers: Sequence[str], *, seed: int = 0, per_burst: int = 2,
                 interval: float = 0.01, honest: bool = True, max_message_bytes: int = 1 << 20) -> None:
        super().__init__(inner)
        self.peers = [p for p in sorted(peers) if p != inner.name]
        self.rng = _rng(seed, inner.name, self.label)
        self.per_burst = per_burst
        self.bursts = _Bursts(interval)
        self.honest = honest
        self.limit = max_message_bytes
        self.samples: deque[bytes] = deque(maxlen=32)

    def outgoing(self, event: Event, actions: list[Action]) -> list[Action]:
        if isinstance(event, Deliver):
            self.samples.append(event.message)
        self.samples.extend(a.message for a in actions if isinstance(a, Send))
        out = actions if self.honest else [a for a in actions if not isinstance(a, Send)]
        if self.bursts.due(event):
            out = out + [Send(self.rng.choice(self.peers), self.garbage()) for _ in range(self.per_burst)]
        return out

    def garbage(self) -> bytes:
        """One hostile message, of a randomly chosen kind."""
        rng = self.rng
        sample = rng.choice(self.samples) if self.samples else b"{}"
        kind = rng.randrange(10)
        if kind == 0:
            return rng.randbytes(rng.randrange(0, 300))
        if kind == 1 and sample:  # one flipped bit
            i = rng.randrange(len(sample))
            return sample[:i] + bytes([sample[i] ^ (1 << rng.randrange(8))]) + sample[i + 1:]
        if kind == 2:
            return sample[: rng.randrange(len(sample) + 1)]
        if kind == 3:
            return b"x" * (self.limit + 1)
        if kind == 4:
            return canonical_json(_random_json(rng, 3))
        if kind == 5:
            return b"[" * 3000 + b"]" * 3000
        if kind == 6:
            return b'{"body":{"from":"r0","height":' + b"9" * 5000 + b"}}"
        if kind == 7:  # well-formed but claims another sender
            return _respoof(sample, rng.choice(self.peers))
        if kind == 8:  # a valid-looking message with every number negative
            return sample.replace(b'"view":', b'"view":-').replace(b'"height":', b'"height":-')
        return sample + rng.randbytes(rng.randrange(1, 16))


def _random_json(rng: random.Random, depth: int) -> Any:
    choice = rng.randrange(6 if depth > 0 else 4)
    if choice == 0:
        return rng.randrange(-(2**40), 2**40)
    if choice == 1:
        return rng.choice(["", "pre-prepare", "commit", "block", "get", "r1", "m1", "x" * 70])
    if choice == 2:
        return rng.choice([None, True, False])
    if choice == 3:
        return rng.randbytes(8).hex()
    if choice == 4:
        return [_random_json(rng, depth - 1) for _ in range(rng.randrange(4))]
    keys = ["body", "sig", "type", "kind", "from", "view", "height", "digest", "payload", "header", "hash"]
    return {rng.choice(keys): _random_json(rng, depth - 1) for _ in range(rng.randrange(5))}


def _respoof(sample: bytes, other: str) -> bytes:
    try:
        obj = json.loads(sample)
        if isinstance(obj.get("body"), dict):
            obj["body"]["from"] = other
        elif isinstance(obj.get("header"), dict):
            obj["header"]["miner"] = other
        return canonical_json(obj)
    except (ValueError, TypeError, AttributeError, RecursionError):
        return sample


class Replay(Behaviour):
    """Every ``interval`` re-sends ``per_burst`` old messages (its own and ones it received) to random peers."""

    label = "replay"

    def __init__(self, inner: ConsensusReplica, peers: Sequence[str], *, seed: int = 0, per_burst: int = 3,
                 interval: float = 0.01, history: int = 256) -> None:
        super().__init__(inner)
        self.peers = [p for p in sorted(peers) if p != inner.name]
        self.rng = _rng(seed, inner.name, self.label)
        self.per_burst = per_burst
        self.bursts = _Bursts(interval)
        self.history: deque[bytes] = deque(maxlen=history)

    def outgoing(self, event: Event, actions: list[Action]) -> list[Action]:
        burst = self.per_burst if self.history and self.bursts.due(event) else 0
        replays = [Send(self.rng.choice(self.peers), self.rng.choice(self.history)) for _ in range(burst)]
        if isinstance(event, Deliver):
            self.history.append(event.message)
        self.history.extend(a.message for a in actions if isinstance(a, Send))
        return actions + replays


class TamperProposals(Behaviour):
    """Every payload it is asked to propose (PBFT primary) or mine (PoW) is manipulated first."""

    label = "tamper_proposals"

    def __init__(self, inner: ConsensusReplica, manipulate: Callable[[bytes], bytes] = tamper) -> None:
        super().__init__(inner)
        self.manipulate = manipulate

    def incoming(self, event: Event) -> Event | None:
        if isinstance(event, Propose):
            return Propose(self.manipulate(event.payload))
        return event


class _PbftRewriter(Behaviour):
    """Shared by the PBFT vote attacks: reads pre-prepares, re-signs votes with the replica's own key."""

    def __init__(self, inner: ConsensusReplica, identity: Identity, validators: Mapping[str, str]) -> None:
        super().__init__(inner)
        self.identity = identity
        self.validators = dict(validators)
        self.checker = SignatureChecker(DOMAIN)
        self.payloads: dict[str, bytes] = {}  # digest -> payload, from every pre-prepare seen

    def _parse(self, raw: bytes) -> VoteMessage | None:
        try:
            msg = parse_message(raw, self.validators, 1 << 24, self.checker)
        except Rejected:
            return None
        if isinstance(msg, VoteMessage):
            if msg.payload is not None:
                self.payloads.setdefault(msg.vote.digest, msg.payload)
            return msg
        return None

    def _revote(self, msg: VoteMessage, digest: str, payload: bytes | None) -> bytes:
        v = msg.vote
        vote = sign_vote(self.checker, self.identity, v.kind, v.view, v.height, digest)
        return encode_vote(vote, payload if v.kind == PRE_PREPARE else None)

    def incoming(self, event: Event) -> Event | None:
        if isinstance(event, Deliver):
            self._parse(event.message)
        return event


class TamperVotes(_PbftRewriter):
    """Prepares and commits the digest of a manipulated payload instead of the proposed one."""

    label = "tamper_votes"

    def outgoing(self, event: Event, actions: list[Action]) -> list[Action]:
        out: list[Action] = []
        for action in actions:
            msg = self._parse(action.message) if isinstance(action, Send) else None
            if msg is None or msg.vote.kind == PRE_PREPARE:
                out.append(action)
                continue
            original = self.payloads.get(msg.vote.digest)
            digest = sha256_hex(tamper(original) if original is not None else bytes.fromhex(msg.vote.digest))
            out.append(Send(action.to, self._revote(msg, digest, None)))  # type: ignore[union-attr]
        return out


class Equivocate(_PbftRewriter):
    """Colluders tell one half of the other replicas value A and the other half value B.

    As primary it sends PRE-PREPARE(A) to group A and PRE-PREPARE(``variant(A)``) to group B; as a
    backup it prepares and commits A towards group A and B towards group B. Colluders get A. Groups:
    the non-colluders in name order, the first ``ceil(m / 2)`` are A.
    """

    label = "equivocate"

    def __init__(self, inner: ConsensusReplica, identity: Identity, validators: Mapping[str, str],
                 colluders: Sequence[str], make_variant: Callable[[bytes], bytes] = variant) -> None:
        super().__init__(inner, identity, validators)
        others = [n for n in sorted(validators) if n not in set(colluders)]
        self.group_b = set(others[(len(others) + 1) // 2:])
        self.peers = [n for n in sorted(validators) if n != identity.name]
        self.make_variant = make_variant
        self.variants: dict[str, tuple[str, bytes]] = {}  # digest A -> (digest B, payload B)

    def _variant_of(self, digest: str) -> tuple[str, bytes] | None:
        if digest not in self.variants and digest in self.payloads:
            payload = self.make_variant(self.payloads[digest])
            self.variants[digest] = (sha256_hex(payload), payload)
        return self.variants.get(digest)

    def outgoing(self, event: Event, actions: list[Action]) -> list[Action]:
        out: list[Action] = []
        for action in actions:
            msg = self._parse(action.message) if isinstance(action, Send) and action.to is None else None
            other = self._variant_of(msg.vote.digest) if msg is not None and msg.vote.kind in VOTE_KINDS else None
            if msg is None or other is None:
                out.append(action)
                continue
            forked = self._revote(msg, other[0], other[1])
            assert isinstance(action, Send)
            out.extend(Send(p, forked if p in self.group_b else action.message) for p in self.peers)
        return out
