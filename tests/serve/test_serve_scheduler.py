"""The scheduler in process (no HTTP): its thread decodes queued requests together, a cancelled one is released in
the engine while the others finish as they would alone, a setting the engine refuses fails only its request, and
an expert caller that raises fails the requests of that step and leaves the scheduler decoding the next ones."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import torch

from bmoe.lm.decoding.engine import TokenEvent, complete
from bmoe.lm.decoding.expert_calls import ModelExperts
from bmoe.lm.decoding.sampling import SamplingParams
from bmoe.lm.model import MoETransformer, build_model
from bmoe.serve.scheduler import Failed, Finished, Scheduler, Ticket
from tests.lm.tiny_lm import CHARACTERS, CONTEXT, encode, tiny_config


def tiny_model() -> MoETransformer:
    return build_model(tiny_config(), seed=3).eval()


def decode(ids: list[int]) -> str:
    return "".join(CHARACTERS[i] for i in ids)


def run(scheduler: Scheduler, body: Callable[[], Awaitable[None]]) -> None:
    """Run ``body`` on an event loop (it starts the scheduler: requests submitted before are admitted together)."""
    try:
        asyncio.run(asyncio.wait_for(body(), 60))
    finally:
        scheduler.stop()


async def last(ticket: Ticket) -> Finished | Failed:
    items = [item async for item in ticket]
    assert all(isinstance(item, TokenEvent) for item in items[:-1])
    assert isinstance(items[-1], Finished | Failed)
    return items[-1]


def test_requests_decode_together_each_as_alone_and_a_cancelled_one_is_released() -> None:
    model = tiny_model()
    scheduler = Scheduler(model, decode, max_batch=4)
    prompts = [encode("to be"), encode("or not"), encode("that is")]
    params = SamplingParams(max_tokens=CONTEXT - 8, temperature=0.9, seed=2)
    results: list[Finished | Failed] = []

    async def body() -> None:
        cancelled = scheduler.submit(encode("the question"), SamplingParams(max_tokens=2000))  # past the context
        tickets = [scheduler.submit(prompt, params) for prompt in prompts]
        scheduler.start()  # all four admitted in its first step
        first = await cancelled.queue.get()
        assert isinstance(first, TokenEvent)
        scheduler.cancel(cancelled)
        results.extend(await asyncio.gather(*(last(ticket) for ticket in tickets)))

    run(scheduler, body)
    for prompt, result in zip(prompts, results, strict=True):
        assert isinstance(result, Finished)
        assert result.completion.tokens == complete(model, prompt, params, decode).tokens
        assert result.calls.rows == (len(prompt) + params.max_tokens - 1) * 2 * 2  # tokens fed x layers x top-2
    stats = scheduler.stats
    assert (stats.cancelled, stats.finished, stats.running, stats.failed) == (1, 3, 0, 0)
    assert stats.largest_batch == 4 and stats.batched_steps >= 1


def test_a_setting_the_engine_refuses_fails_only_its_request() -> None:
    model = tiny_model()
    scheduler = Scheduler(model, decode)
    ends: list[Finished | Failed] = []

    async def body() -> None:
        refused = scheduler.submit(encode("to be"), SamplingParams(top_k=len(CHARACTERS) + 1))
        fine = scheduler.submit(encode("to be"), SamplingParams(max_tokens=4, temperature=0))
        scheduler.start()
        ends.extend(await asyncio.gather(last(refused), last(fine)))

    run(scheduler, body)
    refused, fine = ends
    assert isinstance(refused, Failed) and refused.refused and "top_k" in refused.message
    assert isinstance(fine, Finished) and len(fine.completion.tokens) == 4


class FailsOnce:
    """The model's experts, except that the first call raises (an edge that went away)."""

    def __init__(self, model: MoETransformer) -> None:
        self.experts = ModelExperts(model)
        self.calls = 0

    def __call__(self, layer: int, routed: dict[int, torch.Tensor]) -> dict[int, torch.Tensor]:
        self.calls += 1
        if self.calls == 1:
            raise ConnectionError("edge gone")
        return self.experts(layer, routed)


def test_a_failing_expert_caller_fails_its_step_and_the_next_requests_decode() -> None:
    model = tiny_model()
    scheduler = Scheduler(model, decode, caller=FailsOnce(model))
    ends: list[Finished | Failed] = []
    params = SamplingParams(max_tokens=6, temperature=0)

    async def body() -> None:
        scheduler.start()
        ends.append(await last(scheduler.submit(encode("to be"), params)))
        ends.append(await last(scheduler.submit(encode("to be"), params)))

    run(scheduler, body)
    failed, fine = ends
    assert isinstance(failed, Failed) and not failed.refused and "edge gone" in failed.message
    assert isinstance(fine, Finished)
    assert fine.completion.tokens == complete(model, encode("to be"), params, decode).tokens
    assert (scheduler.stats.failed, scheduler.stats.finished, scheduler.stats.running) == (1, 1, 0)
