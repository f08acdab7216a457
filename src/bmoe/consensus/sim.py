"""A deterministic, in-memory network for consensus replicas: the simulator every test drives.

Owns simulated time, a priority queue of ``(time, seq, event)``, per-link delays (fixed or uniform
in a range), random loss, partitions, crash/restart, and the record of every ``Committed`` per
replica. Randomness comes from one ``random.Random`` seeded by ``seed``; events at equal times run
in the order they were scheduled, and broadcasts fan out in name order, so the same seed gives the
same trace (``trace_digest``) on every machine.

Hosting contract (what a network adapter must also do): the simulator tells each replica the time
with a ``Tick(now)`` at every ``SetTimer`` deadline and before any other event that finds the
replica's clock behind; a ``Send(None, m)`` goes to every other replica.

Crash/restart: a crashed replica receives nothing (messages and timers addressed to it are lost)
and keeps its memory, as a process with a durable log would; on restart it gets ``Tick(now)``.

Must not know: any consensus rule or message format; replicas are opaque ``ConsensusReplica``s.
"""

from __future__ import annotations

import hashlib
import heapq
import itertools
import random
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from bmoe.consensus.engine import Action, Committed, ConsensusReplica, Deliver, Event, Propose, Send, SetTimer, Tick
from bmoe.storage.digest import sha256_hex

Delay = float | tuple[float, float]


@dataclass(order=True)
class _Item:
    time: float
    seq: int
    target: str = field(compare=False)
    event: Event | None = field(compare=False, default=None)
    control: Callable[[], None] | None = field(compare=False, default=None)


class Simulator:
    """Runs replicas over a simulated network. ``run`` until a time limit or a predicate holds."""

    def __init__(
        self,
        replicas: Iterable[ConsensusReplica],
        *,
        seed: int = 0,
        delay: Delay = 0.01,
        drop: float = 0.0,
        link_delay: Mapping[tuple[str, str], Delay] | None = None,
        keep_trace: bool = False,
    ) -> None:
        self.replicas: dict[str, ConsensusReplica] = {}
        for replica in replicas:
            if replica.name in self.replicas:
                raise ValueError(f"two replicas named {replica.name!r}")
            self.replicas[replica.name] = replica
        self.names = tuple(sorted(self.replicas))
        _check_delay(delay)
        for spec in (link_delay or {}).values():
            _check_delay(spec)
        if not 0.0 <= drop < 1.0:
            raise ValueError(f"drop probability must be in [0, 1), got {drop}")
        self.seed = seed
        self.delay = delay
        self.drop = drop
        self.link_delay = dict(link_delay or {})
        self.rng = random.Random(f"bmoe-sim|{seed}")
        self.now = 0.0
        self._queue: list[_Item] = []
        self._seq = itertools.count()
        self._clock = {name: -1.0 for name in self.names}
        self._timers: dict[str, set[float]] = {name: set() for name in self.names}
        self.down: set[str] = set()
        self.groups: tuple[frozenset[str], ...] | None = None
        self.committed: dict[str, list[Committed]] = {name: [] for name in self.names}
        self.commit_times: dict[str, list[float]] = {name: [] for name in self.names}
        self.counters: Counter[str] = Counter()
        self._digest = hashlib.sha256(f"seed={seed}".encode())
        self.trace: list[str] | None = [] if keep_trace else None
        for name in self.names:
            self.schedule(0.0, name, Tick(0.0))

    # -- scheduling ----------------------------------------------------------------------------

    def schedule(self, at: float, target: str, event: Event) -> None:
        if target not in self.replicas:
            raise KeyError(f"no replica {target!r}")
        heapq.heappush(self._queue, _Item(max(at, self.now), next(self._seq), target, event))

    def at(self, when: float, action: Callable[[], None]) -> None:
        """Run ``action`` (a control change) at simulated time ``when``."""
        heapq.heappush(self._queue, _Item(max(when, self.now), next(self._seq), "", None, action))

    def propose(self, payload: bytes, *, to: str | Iterable[str] | None = None, at: float | None = None) -> None:
        """Hand ``payload`` to the replicas ``to`` (default: all), as a client multicasting a request."""
        targets = self.names if to is None else ((to,) if isinstance(to, str) else tuple(to))
        for name in targets:
            self.schedule(self.now if at is None else at, name, Propose(payload))

    def inject(self, to: str, message: bytes, *, sender: str = "outsider", at: float | None = None) -> None:
        """Deliver raw bytes to ``to``, bypassing loss and partitions (tests of hostile input)."""
        self.schedule(self.now if at is None else at, to, Deliver(sender, message))

    def partition(self, *groups: Iterable[str], at: float | None = None) -> None:
        """Cut the network into ``groups``; replicas named in no group form one more group together."""
        def apply() -> None:
            listed = [frozenset(g) for g in groups]
            rest = frozenset(self.names) - frozenset().union(*listed)
            self.groups = tuple(listed + ([rest] if rest else []))
            self._note(f"partition {[sorted(g) for g in self.groups]}")
        self._control(at, apply)

    def heal(self, at: float | None = None) -> None:
        def apply() -> None:
            self.groups = None
            self._note("heal")
        self._control(at, apply)

    def crash(self, name: str, at: float | None = None) -> None:
        def apply() -> None:
            self.down.add(name)
            self._note(f"crash {name}")
        self._control(at, apply)

    def restart(self, name: str, at: float | None = None) -> None:
        def apply() -> None:
            self.down.discard(name)
            self._note(f"restart {name}")
            self.schedule(self.now, name, Tick(self.now))
        self._control(at, apply)

    def replace(self, replica: ConsensusReplica, *, at: float | None = None,
                start: Callable[[ConsensusReplica], list[Action]] | None = None) -> None:
        """A restart that loses memory: ``replica`` (a new object with the same name, restored by the
        caller from what the old one made durable) takes the old one's place; ``start`` gives its first
        actions (for example ``PbftReplica.ask_peers``)."""
        name = replica.name
        if name not in self.replicas:
            raise KeyError(f"no replica {name!r}")

        def apply() -> None:
            self.replicas[name] = replica
            self.down.discard(name)
            self._note(f"replace {name}")
            self._handle(name, Tick(self.now))
            if start is not None:
                self._perform(name, start(replica))
        self._control(at, apply)

    def _control(self, at: float | None, apply: Callable[[], None]) -> None:
        if at is None or at <= self.now:
            apply()
        else:
            self.at(at, apply)

    # -- running -------------------------------------------------------------------------------

    def run(self, *, until: float, stop: Callable[[Simulator], bool] | None = None,
            max_events: int = 10_000_000) -> bool:
        """Process events in time order up to ``until``. True as soon as ``stop(self)`` holds."""
        for _ in range(max_events):
            if stop is not None and stop(self):
                return True
            if not self._queue or self._queue[0].time > until:
                self.now = max(self.now, until)
                return stop is not None and stop(self)
            item = heapq.heappop(self._queue)
            self.now = item.time
            if item.control is not None:
                item.control()
            else:
                assert item.event is not None
                self._dispatch(item.target, item.event)
        raise RuntimeError(f"simulation did not settle within {max_events} events")

    def _dispatch(self, name: str, event: Event) -> None:
        if isinstance(event, Tick):
            self._timers[name].discard(event.now)
        if name in self.down:
            self.counters["lost_to_crash"] += 1
            return
        if isinstance(event, Deliver) and event.sender in self.replicas and self._cut(event.sender, name):
            self.counters["lost_to_partition"] += 1
            return
        if not isinstance(event, Tick) and self._clock[name] < self.now:
            self._handle(name, Tick(self.now))
        self._handle(name, event)

    def _handle(self, name: str, event: Event) -> None:
        if isinstance(event, Tick):
            self._clock[name] = max(self._clock[name], event.now)
        else:
            self.counters["delivered" if isinstance(event, Deliver) else "proposed"] += 1
        actions = self.replicas[name].handle(event)
        self._note(f"{name}<{_describe(event)}")
        self._perform(name, actions)

    def _perform(self, name: str, actions: list[Action]) -> None:
        for action in actions:
            if isinstance(action, Send):
                self._send(name, action)
            elif isinstance(action, SetTimer):
                at = max(float(action.at), self.now)
                if at not in self._timers[name]:
                    self._timers[name].add(at)
                    self.schedule(at, name, Tick(at))
            elif isinstance(action, Committed):
                self.committed[name].append(action)
                self.commit_times[name].append(self.now)
                self._note(f"{name} committed {action.height} {action.payload_hash}")

    def _send(self, sender: str, action: Send) -> None:
        targets = [n for n in self.names if n != sender] if action.to is None else [action.to]
        for target in targets:
            self.counters["sent"] += 1
            self.counters["bytes_sent"] += len(action.message)
            lost = self.rng.random() < self.drop
            delay = self._sample_delay(sender, target)
            if target not in self.replicas:
                self.counters["unknown_destination"] += 1
            elif lost:
                self.counters["lost_at_random"] += 1
            elif self._cut(sender, target):
                self.counters["lost_to_partition"] += 1
            else:
                self.schedule(self.now + delay, target, Deliver(sender, action.message))

    def _sample_delay(self, sender: str, target: str) -> float:
        spec = self.link_delay.get((sender, target), self.delay)
        if isinstance(spec, tuple):
            return self.rng.uniform(spec[0], spec[1])
        return float(spec)

    def _cut(self, a: str, b: str) -> bool:
        if self.groups is None:
            return False
        return not any(a in g and b in g for g in self.groups)

    # -- records -------------------------------------------------------------------------------

    def _note(self, line: str) -> None:
        entry = f"{self.now!r} {line}"
        self._digest.update(entry.encode() + b"\n")
        if self.trace is not None:
            self.trace.append(entry)

    def trace_digest(self) -> str:
        """SHA-256 over every handled event and commit so far: equal digests, equal runs."""
        return self._digest.copy().hexdigest()

    def chain(self, name: str) -> list[tuple[int, str]]:
        """(height, payload hash) of every ``Committed`` the replica reported, in order."""
        return [(c.height, c.payload_hash) for c in self.committed[name]]


def _check_delay(spec: Delay) -> None:
    if isinstance(spec, tuple):
        if len(spec) != 2 or not 0 <= spec[0] <= spec[1]:
            raise ValueError(f"a delay range must be (low, high) with 0 <= low <= high, got {spec}")
    elif not isinstance(spec, int | float) or spec < 0:
        raise ValueError(f"a delay must be >= 0, got {spec!r}")


def _describe(event: Event) -> str:
    if isinstance(event, Deliver):
        return f"deliver {event.sender} {sha256_hex(event.message)[:16]}"
    if isinstance(event, Propose):
        return f"propose {sha256_hex(event.payload)[:16]}"
    return f"tick {event.now!r}"
