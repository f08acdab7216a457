"""Verified decoding: the decoding engine on the fast path, its tokens shown only once their chunk is verified.

:class:`VerifiedDecoding` has the engine's interface (``submit``, ``step``, ``busy``, ``result``, ``release``,
``log``), so a server's scheduler drives it as it drives the plain engine. Each :meth:`step` runs one engine step
with the experts on the fast path (``fast_path.py``) and holds its token events back. After ``chunk_steps`` steps
(or when nothing runs any more, or an edge is gone) the chunk is verified (``chunk.py``) and recorded (the
``recorder`` signs and seals its ``generation_chunk`` transaction); every sequence a wrong answer reached rolls
back to its first wrong token, its held events from there are dropped and the next steps generate them again
with other primaries (an accused edge serves no more); the rest of the held events are released.

A request submitted with :meth:`submit_optimistic` gets its events at once instead, and after each chunk a
``PrefixMark`` (``lm/decoding/stream_mark.py``): how many of its tokens are final, and where a rollback cut them.

``log`` holds the verified calls (accepted outputs, rows a rollback discarded left out), what a request's call
digest is made of. :meth:`receipt` says which sealed chunks hold a request's calls.

Must not know: HTTP, how a chunk is sealed (the ``recorder``), the genesis.
"""

from __future__ import annotations

import dataclasses
import json
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from bmoe.ledger.encoding import canonical_json
from bmoe.lm.decoding.engine import Completion, DecodingEngine, TokenEvent
from bmoe.lm.decoding.expert_calls import CallLog, CallRows
from bmoe.lm.decoding.sampling import SamplingParams
from bmoe.lm.decoding.stream_mark import PrefixMark
from bmoe.lm.model import MoETransformer
from bmoe.protocol.generation.billing import ChunkUsage
from bmoe.protocol.generation.chunk import ChunkContext, ChunkOutcome, verify_chunk
from bmoe.protocol.generation.edges import EdgeGone
from bmoe.protocol.generation.fast_path import FastPath


@dataclass(frozen=True)
class SealedChunk:
    """A chunk as the ledger recorded it."""

    chunk: int
    height: int  # the block that sealed it
    tx: str  # the transaction's hash
    records: str  # CID of its call records
    tokens: int
    calls: int
    checked: int
    disputes: int
    records_against: int
    ledger_bytes: int  # the transaction's canonical JSON


Recorder = Callable[[dict[str, Any], ChunkUsage], SealedChunk]  # payload, usage -> sealed (sign, submit, seal)
ChunkSeed = Callable[[int], int]  # chunk index -> its verification seed


@dataclass
class VerificationStats:
    """What verification has done in this session."""

    chunks: int = 0
    tokens: int = 0  # tokens verified and released
    calls: int = 0
    checked: int = 0
    disputes: int = 0
    rollbacks: int = 0  # sequences rolled back
    discarded_tokens: int = 0  # held tokens a rollback dropped
    fast_rows: int = 0  # expert rows the fast path computed
    replica_rows: int = 0  # expert rows replicas re-computed (verification's extra compute)
    ledger_bytes: int = 0
    gone: list[str] = field(default_factory=list)
    accused: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


def request_object(prompt: list[int], params: SamplingParams) -> bytes:
    """What a replay needs of a request besides the ledger: its prompt's token ids and its sampling settings (the
    seed included), canonical JSON."""
    settings = dataclasses.asdict(params)
    settings["stop"] = list(params.stop)
    return canonical_json({"prompt": list(prompt), "sampling": settings})


def read_request(data: bytes) -> tuple[list[int], SamplingParams]:
    """A request object's prompt and sampling settings; ValueError for bytes that are not one."""
    try:
        value = json.loads(data)
        settings = dict(value["sampling"])
        settings["stop"] = tuple(settings["stop"])
        prompt = value["prompt"]
        if not isinstance(prompt, list) or not all(isinstance(t, int) and not isinstance(t, bool) for t in prompt):
            raise ValueError("the prompt is not a list of token ids")
        return prompt, SamplingParams(**settings)
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError(f"not a generation request object: {err}") from None


class VerifiedDecoding:
    """The engine's interface, every token verified before it is shown."""

    def __init__(self, model: MoETransformer, context: ChunkContext, recorder: Recorder, chunk_seed: ChunkSeed,
                 primary_seed: int, chunk_steps: int = 16, decode: Callable[[list[int]], str] | None = None,
                 max_batch: int = 16) -> None:
        if isinstance(chunk_steps, bool) or not isinstance(chunk_steps, int) or chunk_steps < 1:
            raise ValueError(f"chunk_steps must be an integer >= 1, got {chunk_steps!r}")
        self.context = context
        self.recorder = recorder
        self.chunk_seed = chunk_seed
        self.chunk_steps = chunk_steps
        self.fast = FastPath(context.edges, model.config.num_local_experts, primary_seed, context.holders)
        self.engine = DecodingEngine(model, self.fast, decode, max_batch)
        self.log = CallLog()  # verified calls, for the requests' digests
        self.serving = [address for address in context.enrolled if address in context.edges]
        self.sealed: list[SealedChunk] = []
        self.stats = VerificationStats()
        self.between_chunks: Callable[[], None] | None = None  # run after each chunk ends (a fleet's re-placement)
        self._chunk = 0
        self._steps = 0
        self._tokens = 0
        self._held: list[TokenEvent] = []
        self._listeners: dict[int, Callable[[Any], None]] = {}
        self._chunks_of: dict[int, set[int]] = defaultdict(set)  # request -> the chunks holding its calls
        self._requests: dict[int, str] = {}  # request -> the CID of its request object
        self._payers: dict[int, str] = {}  # request -> the account that pays for its tokens (a paid session)
        self._optimistic: set[int] = set()  # requests whose events go out before their verification
        self._cuts: dict[int, tuple[int, int]] = {}  # request -> (tokens, characters) kept by this chunk's rollback
        self.fast.begin(0, self.serving)

    # the engine's interface

    def submit(self, prompt: list[int], params: SamplingParams,
               on_event: Callable[[TokenEvent], None] | None = None, payer: str | None = None) -> int:
        """Queue a request; its prompt and sampling settings are stored (``request_object``) for its replay.
        ``payer``: the account its tokens are charged to (each chunk's ``ChunkUsage``)."""
        request = self.engine.submit(prompt, params)
        self._requests[request] = self.context.store.put(request_object(prompt, params))
        if payer is not None:
            self._payers[request] = payer
        if on_event is not None:
            self._listeners[request] = on_event
        return request

    def submit_optimistic(self, prompt: list[int], params: SamplingParams,
                          on_event: Callable[[TokenEvent | PrefixMark], None], payer: str | None = None) -> int:
        """Queue a request whose events ``on_event`` gets at once, before their chunk is verified, with a
        :class:`PrefixMark` after each chunk: how many of its tokens are final, and where a rollback cut them."""
        request = self.submit(prompt, params, on_event, payer)
        self._optimistic.add(request)
        return request

    def result(self, request: int) -> Completion:
        return self.engine.result(request)

    def release(self, request: int) -> None:
        self.engine.release(request)
        self._listeners.pop(request, None)
        self._requests.pop(request, None)
        self._payers.pop(request, None)
        self._optimistic.discard(request)
        self._held = [event for event in self._held if event.request != request]

    @property
    def busy(self) -> bool:
        return self.engine.busy or bool(self._held)

    def step(self) -> list[TokenEvent]:
        """One engine step on the fast path; the events verified by now (none until a chunk ends)."""
        try:
            events = self.engine.step()
        except EdgeGone as err:  # nothing of the step was committed: verify what was, then go on without the edge
            self._drop(err.address)
            return self._end_chunk()
        self._held.extend(events)
        for event in events:
            if event.request in self._optimistic:
                self._listeners[event.request](event)
        self._steps += 1
        self._tokens += sum(event.token is not None for event in events)
        if self._steps >= self.chunk_steps or not self.engine.busy:
            return self._end_chunk()
        return []

    def receipt(self, request: int) -> dict[str, Any]:
        """The sealed chunks holding ``request``'s calls: the receipt's ``ledger`` section."""
        chunks = self._sealed_of(request)
        return {"generation": self.context.generation, "request": self._requests.get(request), "sequence": request,
                "chunks": [{"chunk": c.chunk, "height": c.height, "tx": c.tx, "records": c.records}
                           for c in chunks],
                "height": self.sealed[-1].height if self.sealed else None}

    def verification(self, request: int) -> dict[str, Any]:
        """The receipt's ``verification`` section for ``request``."""
        chunks = self._sealed_of(request)
        return {"mode": "b-moe", "verified": True, "policy": self.context.policy.name,
                "chunk_steps": self.chunk_steps, "checked_calls": sum(c.checked for c in chunks),
                "calls": sum(c.calls for c in chunks), "disputes": sum(c.disputes for c in chunks),
                "records_against": sum(c.records_against for c in chunks)}

    def _sealed_of(self, request: int) -> list[SealedChunk]:
        """The sealed chunks holding ``request``'s calls, in order."""
        return [self.sealed[index] for index in sorted(self._chunks_of.get(request, ()))]

    # chunks

    def _drop(self, address: str, accused: bool = False) -> None:
        """``address`` serves no more in this session: gone, or ``accused`` of a lie."""
        if address in self.serving:
            self.serving.remove(address)
        listed = self.stats.accused if accused else self.stats.gone
        if address not in listed:
            listed.append(address)

    def _end_chunk(self) -> list[TokenEvent]:
        calls = self.engine.log.take()
        if calls:
            outcome = verify_chunk(self.context, self._chunk, self.chunk_seed(self._chunk), calls,
                                   dict(self.fast.primaries), self._tokens, self.stats.accused)
            self._record(outcome, calls)
            self._chunk += 1
        self._steps = self._tokens = 0
        if self.between_chunks is not None:
            self.between_chunks()
        self.fast.begin(self._chunk, self.serving)
        released, self._held = self._held, []
        self.stats.tokens += sum(event.token is not None for event in released)
        for event in released:
            listener = self._listeners.get(event.request)
            if listener is not None and event.request not in self._optimistic:
                listener(event)
        for request in sorted(self._optimistic):
            cut = self._cuts.get(request)
            self._listeners[request](PrefixMark(request, len(self.engine.result(request).tokens),
                                                cut[0] if cut else None, cut[1] if cut else None))
        self._cuts = {}
        return released

    def _record(self, outcome: ChunkOutcome, calls: dict[tuple[int, int], CallRows]) -> None:
        active = {s for rows in calls.values() for s in rows.sequences.tolist()}
        sealed = self.recorder(outcome.payload, self._usage(len(active), outcome.rollbacks))
        self.sealed.append(sealed)
        for sequence in active:
            self._chunks_of[sequence].add(len(self.sealed) - 1)
        for address in sorted(outcome.accused):
            self._drop(address, accused=True)
        for address in sorted(outcome.gone):
            self._drop(address)
        for sequence, position in sorted(outcome.rollbacks.items()):
            self._roll_back(sequence, position)
        for (layer, expert), rows in sorted(calls.items()):
            self._log_verified(layer, expert, rows, outcome.accepted[(layer, expert)], outcome.rollbacks)
        stats = self.stats
        stats.chunks += 1
        stats.calls += outcome.payload["calls"]
        stats.checked += outcome.payload["checked"]
        stats.disputes += len(outcome.payload["disputes"])
        stats.fast_rows += outcome.payload["rows"]
        stats.replica_rows += outcome.replica_rows
        stats.ledger_bytes += sealed.ledger_bytes

    def _usage(self, active: int, rollbacks: dict[int, int]) -> ChunkUsage:
        """The chunk's load and, per payer, its held tokens that the rollbacks keep."""
        cuts = {sequence: self._cut_index(sequence, position) for sequence, position in rollbacks.items()}
        tokens: dict[str, int] = defaultdict(int)
        for event in self._held:
            cut = cuts.get(event.request)
            payer = self._payers.get(event.request)
            if event.token is not None and payer is not None and (cut is None or event.index < cut):
                tokens[payer] += 1
        return ChunkUsage(active, dict(sorted(tokens.items())))

    def _cut_index(self, sequence: int, position: int) -> int | None:
        """The first of ``sequence``'s token indices a rollback to ``position`` discards; None once released."""
        try:
            return position - len(self.engine.result(sequence).prompt)
        except KeyError:  # released meanwhile (its client went away)
            return None

    def _roll_back(self, sequence: int, position: int) -> None:
        cut = self._cut_index(sequence, position)
        if cut is None:  # released meanwhile: nothing to roll back
            return
        self.engine.rollback(sequence, position)
        self._cuts[sequence] = (cut, self.engine.shown(sequence))
        kept = [e for e in self._held if not (e.request == sequence and e.index >= cut)]
        self.stats.discarded_tokens += sum(e.token is not None for e in self._held) - sum(
            e.token is not None for e in kept)
        self._held = kept
        self.stats.rollbacks += 1

    def _log_verified(self, layer: int, expert: int, rows: CallRows, accepted: torch.Tensor,
                      rollbacks: dict[int, int]) -> None:
        """Record the call's rows that stand (not discarded by a rollback) with their accepted outputs."""
        keep = torch.ones(rows.sequences.shape[0], dtype=torch.bool)  # (n,)
        for sequence, position in rollbacks.items():
            keep &= (rows.sequences != sequence) | (rows.produced < position)
        if bool(keep.any()):
            self.log.record(layer, expert, CallRows(rows.sequences[keep], rows.positions[keep], rows.produced[keep],
                                                    rows.inputs[keep], accepted[keep]))
