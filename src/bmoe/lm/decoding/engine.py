"""The decoding engine: requests in, token events out, several sequences decoded together (continuous batching,
as vLLM does it, simply).

:meth:`DecodingEngine.submit` queues a request (prompt token ids and :class:`SamplingParams`);
:meth:`DecodingEngine.step` admits queued requests up to ``max_batch`` running ones, runs one forward pass for
all running sequences together (the newcomers' prompts and the others' last tokens in the same pass, so each
layer calls the experts once for the whole batch), draws one token for each, and retires the finished ones;
it returns one :class:`TokenEvent` per token. :meth:`DecodingEngine.events` steps until nothing runs.

A sequence whose tokens outgrow the model's context continues as ``lm/generation.py`` does: each further token
comes from the last ``max_position_embeddings`` tokens recomputed as one window (rotary positions from 0; the
sequence's cache is left as it was, for a rollback).

:meth:`DecodingEngine.rollback` takes a sequence back to a token position (a finished one too, until it is
released): its later tokens are dropped, its cache cut to what the step that produced that token had, its rows
in the call log discarded; the next step recomputes from there and, the draws being seeded per position, a
sequence rolled back on honest experts continues exactly as before.

Must not know: the ledger, edges, the network, tokenizers (text comes from the ``decode`` function given).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import torch

from bmoe.lm.decoding.expert_calls import CallLog, ExpertCaller, ModelExperts
from bmoe.lm.decoding.kv_cache import KVCache
from bmoe.lm.decoding.sampling import SamplingError, SamplingParams, sample_token
from bmoe.lm.decoding.step import Segment, forward_step
from bmoe.lm.decoding.stop_text import stop_index, streamable_length
from bmoe.lm.model import MoETransformer

STOP, LENGTH = "stop", "length"  # the OpenAI API's finish reasons


@dataclass(frozen=True)
class TokenEvent:
    """One token of one request, and the text it lets a stream show."""

    request: int
    token: int | None  # None when a request finishes without one (max_tokens 0)
    index: int  # the token's index among the request's generated tokens
    text: str  # text newly shown (a stop string and any tail that may begin one are held back)
    finish_reason: str | None  # "stop" (a stop string or the end-of-sequence token), "length", None: running


@dataclass(frozen=True)
class Completion:
    """A finished (or running) request's generated tokens and text."""

    prompt: list[int]
    tokens: list[int]  # generated, the one that completed a stop string or the end-of-sequence token included
    text: str  # their text, ending before a stop string or the end-of-sequence token
    finish_reason: str | None


@dataclass(eq=False)
class Sequence:
    """A request's state in the engine (compared by identity)."""

    id: int
    prompt: list[int]
    params: SamplingParams
    cache: KVCache
    tokens: list[int] = field(default_factory=list)  # the prompt and the generated tokens
    finish_reason: str | None = None
    text: str = ""  # the generated text (cut before a stop when finished)
    shown: int = 0  # how many characters of it events have shown
    on_event: Callable[[TokenEvent], None] | None = None  # called with each of the request's events

    @property
    def generated(self) -> list[int]:
        return self.tokens[len(self.prompt):]


class DecodingEngine:
    """Decodes many requests on one model, the experts through ``caller`` (the model's own by default), every
    expert row recorded in ``log``."""

    def __init__(self, model: MoETransformer, caller: ExpertCaller | None = None,
                 decode: Callable[[list[int]], str] | None = None, max_batch: int = 16,
                 log: CallLog | None = None) -> None:
        if isinstance(max_batch, bool) or not isinstance(max_batch, int) or max_batch < 1:
            raise ValueError(f"max_batch must be an integer >= 1, got {max_batch!r}")
        self.model = model
        self.caller = caller if caller is not None else ModelExperts(model)
        self.decode = decode
        self.max_batch = max_batch
        self.log = log if log is not None else CallLog()
        self._sequences: dict[int, Sequence] = {}
        self._waiting: deque[Sequence] = deque()
        self._running: list[Sequence] = []
        self._next_id = 0

    # requests

    def submit(self, prompt: list[int], params: SamplingParams,
               on_event: Callable[[TokenEvent], None] | None = None) -> int:
        """Queue a request; its id. ``on_event``, if given, is called with each of its events as :meth:`step`
        makes them (a server's per-request stream). Refuses an empty prompt, a token outside the vocabulary and
        stop strings without a ``decode`` function to read them in."""
        config = self.model.config
        if not prompt:
            raise SamplingError("the prompt is empty: give at least one token")
        bad = [t for t in prompt if isinstance(t, bool) or not isinstance(t, int) or not 0 <= t < config.vocab_size]
        if bad:
            raise SamplingError(f"prompt token {bad[0]!r} is not in the vocabulary [0, {config.vocab_size})")
        params.check_vocabulary(config.vocab_size)
        if params.stop and self.decode is None:
            raise SamplingError("stop strings need the engine's decode function (token ids -> text)")
        weight = self.model.lm_head.weight
        cache = KVCache(config.num_hidden_layers, config.num_key_value_heads, config.head_dim,
                        config.max_position_embeddings, weight.dtype, weight.device)
        sequence = Sequence(self._next_id, list(prompt), params, cache, tokens=list(prompt), on_event=on_event)
        self._next_id += 1
        self._sequences[sequence.id] = sequence
        self._waiting.append(sequence)
        return sequence.id

    def result(self, request: int) -> Completion:
        sequence = self._sequence(request)
        return Completion(list(sequence.prompt), sequence.generated, sequence.text, sequence.finish_reason)

    def shown(self, request: int) -> int:
        """How many characters of the request's text its events have shown (after a rollback: what is kept)."""
        return self._sequence(request).shown

    def release(self, request: int) -> None:
        """Forget a request (finished, or cancelled while it runs): its cache is freed, it cannot roll back (its
        rows stay in the call log: they were computed)."""
        sequence = self._sequences.pop(request)
        if sequence in self._running:
            self._running.remove(sequence)
        if sequence in self._waiting:
            self._waiting.remove(sequence)

    @property
    def busy(self) -> bool:
        """Whether a request is waiting or running."""
        return bool(self._waiting or self._running)

    def _sequence(self, request: int) -> Sequence:
        if request not in self._sequences:
            raise KeyError(f"no request {request} in the engine (released, or never submitted)")
        return self._sequences[request]

    # decoding

    def step(self) -> list[TokenEvent]:
        """Admit what fits, run one forward pass for every running sequence, one token each; their events (each
        also passed to its request's ``on_event``)."""
        events = self._admit()
        running = list(self._running)
        if running:
            logits = forward_step(self.model, [self._segment(s) for s in running], self.caller, self.log)  # (S, V)
            for sequence, row in zip(running, logits, strict=True):
                token = sample_token(row, sequence.params, len(sequence.tokens))
                sequence.tokens.append(token)
                events.append(self._after_token(sequence, token))
            self._running = [s for s in self._running if s.finish_reason is None]
        for event in events:
            sequence = self._sequences.get(event.request)  # a listener may have released its request
            if sequence is not None and sequence.on_event is not None:
                sequence.on_event(event)
        return events

    def events(self) -> Iterator[TokenEvent]:
        """Every event until no request waits or runs (requests submitted meanwhile included)."""
        while self.busy:
            yield from self.step()

    def _admit(self) -> list[TokenEvent]:
        events = []
        while self._waiting and len(self._running) < self.max_batch:
            sequence = self._waiting.popleft()
            if sequence.params.max_tokens == len(sequence.generated):  # nothing to generate (max_tokens 0)
                sequence.finish_reason = LENGTH
                events.append(TokenEvent(sequence.id, None, len(sequence.generated), "", LENGTH))
            else:
                self._running.append(sequence)
        return events

    def _segment(self, sequence: Sequence) -> Segment:
        """What ``sequence`` feeds this step: its tokens past its cache, or, past the context, the last window."""
        length, context = len(sequence.tokens), self.model.config.max_position_embeddings
        device = self.model.lm_head.weight.device
        if length <= context:
            start = sequence.cache.length
            tokens = torch.tensor(sequence.tokens[start:], dtype=torch.int64, device=device)  # (t,)
            return Segment(sequence.id, tokens, start, start, length, sequence.cache)
        window = torch.tensor(sequence.tokens[-context:], dtype=torch.int64, device=device)  # (context,)
        return Segment(sequence.id, window, 0, length - context, length, sequence.cache.empty_like())

    def _after_token(self, sequence: Sequence, token: int) -> TokenEvent:
        """Apply the stop rules after ``token``; the event that shows it."""
        params, generated = sequence.params, sequence.generated
        ended = params.eos_token_id is not None and token == params.eos_token_id
        text = self.decode(generated[:-1] if ended else generated) if self.decode is not None else ""
        cut = stop_index(text, params.stop)
        if cut is not None:
            text, ended = text[:cut], True
        if ended:
            sequence.finish_reason = STOP
        elif len(generated) >= params.max_tokens:
            sequence.finish_reason = LENGTH
        sequence.text = text
        visible = len(text) if sequence.finish_reason else streamable_length(text, params.stop)
        event = TokenEvent(sequence.id, token, len(generated) - 1, text[sequence.shown:visible],
                           sequence.finish_reason)
        sequence.shown = max(sequence.shown, visible)
        return event

    # rollback

    def rollback(self, request: int, position: int) -> None:
        """Take a request back to token ``position`` (of its prompt and generated tokens, at least the prompt's
        length): the tokens from ``position`` on are dropped and generated again by the next steps. A finished
        request runs again. Rolling back to ``len(tokens)`` drops nothing and changes nothing."""
        sequence = self._sequence(request)
        if isinstance(position, bool) or not isinstance(position, int) or not len(sequence.prompt) <= position <= len(
                sequence.tokens):
            raise ValueError(f"request {request} can roll back to a position in [{len(sequence.prompt)}, "
                             f"{len(sequence.tokens)}], not {position!r}")
        if position == len(sequence.tokens):
            return  # nothing to drop: no step has produced that position yet
        del sequence.tokens[position:]
        # the cache the step producing `position` started from: the prompt's step started from an empty cache
        kept = position - 1 if position > len(sequence.prompt) else 0
        sequence.cache.truncate(min(sequence.cache.length, kept))
        self.log.discard(request, position)
        sequence.text = self.decode(sequence.generated) if self.decode is not None and sequence.generated else ""
        sequence.shown = min(sequence.shown, streamable_length(sequence.text, sequence.params.stop))
        if sequence.finish_reason is not None:
            sequence.finish_reason = None
            self._waiting.appendleft(sequence)


def complete(model: MoETransformer, prompt: list[int], params: SamplingParams,
             decode: Callable[[list[int]], str] | None = None, caller: ExpertCaller | None = None) -> Completion:
    """One request decoded alone to its end."""
    engine = DecodingEngine(model, caller, decode, max_batch=1)
    request = engine.submit(prompt, params)
    for _ in engine.events():
        pass
    return engine.result(request)
