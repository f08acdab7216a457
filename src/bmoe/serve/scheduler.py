"""One thread owns the decoding engine: requests are queued from the server's event loop, admitted between steps,
and each one's token events are put on its own asyncio queue as the steps make them (continuous batching: every
step decodes all running requests together, the newcomers' prompts in the same pass).

:meth:`Scheduler.submit` (from the event loop) returns a :class:`Ticket`, an async iterator of the request's
:class:`~bmoe.lm.decoding.engine.TokenEvent`\\ s ending with a :class:`Finished` (the completion and the digest
of its expert calls) or a :class:`Failed`. :meth:`Scheduler.cancel` (a client gone) releases the request in the
engine before the next step. The experts go through the ``caller`` given (the in-process ``ModelExperts`` by
default), or the scheduler drives another ``engine`` with the engine's interface: verified generation's
``VerifiedDecoding``, whose events come once their chunk is verified and whose receipts name the ledger.
:attr:`Scheduler.stats` counts steps, and the steps that decoded more than one sequence.

Must not know: HTTP, the API's shapes, tokenizers (text comes through ``decode``).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from bmoe.lm.decoding.engine import Completion, DecodingEngine, TokenEvent
from bmoe.lm.decoding.expert_calls import CallLog, ExpertCaller
from bmoe.lm.decoding.sampling import SamplingParams
from bmoe.lm.decoding.stream_mark import PrefixMark
from bmoe.lm.model import MoETransformer
from bmoe.serve.call_digest import CallDigests, CallsDigest


@dataclass(frozen=True)
class Finished:
    """A request's end: what it generated, the digest of its expert calls, and, when a verifying decoder produced
    it, the receipt's ``ledger`` and ``verification`` sections."""

    completion: Completion
    calls: CallsDigest
    ledger: dict[str, Any] | None = None
    verification: dict[str, Any] | None = None


class Decoder(Protocol):
    """What the scheduler drives: ``DecodingEngine``, or a decoder with its interface that verifies
    (``protocol/generation/decoding.VerifiedDecoding``, which also gives ``receipt`` and ``verification``)."""

    log: CallLog
    busy: bool

    def submit(self, prompt: list[int], params: SamplingParams,
               on_event: Callable[[TokenEvent], None] | None = None) -> int: ...

    def step(self) -> list[TokenEvent]: ...

    def result(self, request: int) -> Completion: ...

    def release(self, request: int) -> None: ...


@dataclass(frozen=True)
class Failed:
    """A request the engine refused or could not decode."""

    message: str
    refused: bool  # True: the request itself was wrong (a 400), False: the server failed (a 500)
    status: int | None = None  # a refusal's own HTTP status (402: its payer cannot pay), else 400 or 500


Item = TokenEvent | PrefixMark | Finished | Failed


@dataclass(eq=False)
class Ticket:
    """A submitted request, as the event loop sees it: its items arrive on ``queue``."""

    prompt: list[int]
    params: SamplingParams
    loop: asyncio.AbstractEventLoop
    optimistic: bool = False  # events before their verification, with PrefixMarks (a verifying decoder only)
    payer: str | None = None  # the account its tokens are charged to (a decoder that charges: run/payments.py)
    queue: asyncio.Queue[Item] = field(default_factory=asyncio.Queue)
    request: int | None = None  # the engine's id, once the decoding thread has submitted it
    done: bool = False  # set by the decoding thread once Finished or Failed is posted

    def post(self, item: Item) -> None:
        """Hand ``item`` to the event loop (from the decoding thread); dropped if the loop has closed."""
        with contextlib.suppress(RuntimeError):  # the loop has closed: nobody reads this request any more
            self.loop.call_soon_threadsafe(self.queue.put_nowait, item)

    async def __aiter__(self) -> AsyncIterator[Item]:
        while True:
            item = await self.queue.get()
            yield item
            if isinstance(item, Finished | Failed):
                return


@dataclass
class SchedulerStats:
    """What the decoding thread has done since it started."""

    steps: int = 0
    batched_steps: int = 0  # steps that decoded more than one sequence
    largest_batch: int = 0
    submitted: int = 0
    finished: int = 0
    cancelled: int = 0
    failed: int = 0
    running: int = 0  # requests in the engine now (waiting or decoding)

    def to_json(self) -> dict[str, int]:
        return dict(self.__dict__)


class Scheduler:
    """Owns a :class:`DecodingEngine` on a thread of its own."""

    def __init__(self, model: MoETransformer, decode: Callable[[list[int]], str], caller: ExpertCaller | None = None,
                 max_batch: int = 16, engine: Decoder | None = None) -> None:
        """``engine``: a decoder to drive instead of a ``DecodingEngine`` on ``model`` (``caller`` then unused)."""
        self._engine: Decoder = engine if engine is not None else DecodingEngine(model, caller, decode, max_batch)
        self._digests = CallDigests()
        self._tickets: dict[int, Ticket] = {}  # the engine's requests, by id (decoding thread only)
        self._inbox: list[Ticket] = []
        self._cancels: list[Ticket] = []
        self._wake = threading.Condition()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="bmoe-serve-decoding", daemon=True)
        self.stats = SchedulerStats()

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Finish the step under way, fail what is left, and end the thread."""
        with self._wake:
            self._stopping = True
            self._wake.notify()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def submit(self, prompt: list[int], params: SamplingParams, optimistic: bool = False,
               payer: str | None = None) -> Ticket:
        """Queue a request (from the event loop); its ticket. ``optimistic``: a verifying decoder sends its tokens
        before their verification, with :class:`PrefixMark` items (the plain engine verifies nothing: every token
        is as final as it will be). ``payer``: the account a decoder that charges bills (given to its ``submit``)."""
        ticket = Ticket(list(prompt), params, asyncio.get_running_loop(), optimistic, payer=payer)
        with self._wake:
            self._inbox.append(ticket)
            self.stats.submitted += 1
            self._wake.notify()
        return ticket

    def cancel(self, ticket: Ticket) -> None:
        """Release ``ticket``'s request (a client gone); nothing if it has finished."""
        with self._wake:
            if ticket in self._inbox:
                self._inbox.remove(ticket)
                self.stats.cancelled += 1
            elif not ticket.done:
                self._cancels.append(ticket)
                self._wake.notify()

    # the decoding thread

    def _run(self) -> None:
        while True:
            with self._wake:
                while not (self._inbox or self._cancels or self._stopping or self._engine.busy):
                    self._wake.wait()
                if self._stopping:
                    break
                arrived, self._inbox = self._inbox, []
                cancels, self._cancels = self._cancels, []
            released = sum(self._release(ticket) for ticket in cancels)  # a request may have finished meanwhile
            if released:
                with self._wake:
                    self.stats.cancelled += released
            for ticket in arrived:
                self._admit(ticket)
            if self._engine.busy:
                self._step()
        for ticket in [*self._tickets.values(), *self._inbox]:
            ticket.post(Failed("the server is shutting down", refused=False))

    def _admit(self, ticket: Ticket) -> None:
        optimistic = getattr(self._engine, "submit_optimistic", None) if ticket.optimistic else None
        paying = {"payer": ticket.payer} if ticket.payer is not None else {}
        try:
            if optimistic is not None:
                ticket.request = optimistic(ticket.prompt, ticket.params, ticket.post, **paying)
            else:
                ticket.request = self._engine.submit(ticket.prompt, ticket.params, on_event=ticket.post, **paying)
        except ValueError as err:  # SamplingError: a setting the model cannot take; a payer that cannot pay (402)
            self._end(ticket, Failed(str(err), refused=True, status=getattr(err, "status", None)))
            return
        self._tickets[ticket.request] = ticket
        self.stats.running = len(self._tickets)

    def _step(self) -> None:
        try:
            events = self._engine.step()
        except Exception as err:  # a caller's failure fails the engine's requests, not the server
            for ticket in list(self._tickets.values()):
                self._release(ticket)
                self._end(ticket, Failed(f"decoding failed: {type(err).__name__}: {err}", refused=False))
            return
        decoded = sum(event.token is not None for event in events)
        self.stats.steps += 1
        self.stats.batched_steps += decoded > 1
        self.stats.largest_batch = max(self.stats.largest_batch, decoded)
        self._digests.fold(self._engine.log.take())
        for event in events:
            ticket = self._tickets.get(event.request)
            if event.finish_reason is not None and ticket is not None:
                finished = Finished(self._engine.result(event.request), self._digests.finish(event.request),
                                    *_receipt_sections(self._engine, event.request))
                self._release(ticket)
                self._end(ticket, finished)
                self.stats.finished += 1

    def _release(self, ticket: Ticket) -> bool:
        """Release ``ticket``'s request in the engine; whether it was there."""
        there = ticket.request is not None and self._tickets.pop(ticket.request, None) is not None
        if there:
            assert ticket.request is not None
            self._engine.release(ticket.request)
            self._digests.drop(ticket.request)
        self.stats.running = len(self._tickets)
        return there

    def _end(self, ticket: Ticket, item: Finished | Failed) -> None:
        with self._wake:
            ticket.done = True
        ticket.post(item)
        if isinstance(item, Failed):
            self.stats.failed += 1


def _receipt_sections(engine: Decoder, request: int) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """A verifying decoder's ``ledger`` and ``verification`` sections for ``request``; (None, None) for the plain
    engine."""
    receipt, verification = getattr(engine, "receipt", None), getattr(engine, "verification", None)
    if receipt is None or verification is None:
        return None, None
    return receipt(request), verification(request)
