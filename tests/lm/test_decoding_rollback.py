"""Rollback: a sequence taken back to a token position and continued ends, bit for bit, where the run without
the rollback ended (in a batch, finished or not, sampled or greedy, past the context too), its call-log rows
after the position discarded and computed again; a position outside its generated tokens is refused."""

from __future__ import annotations

import pytest

from bmoe.lm.decoding.engine import DecodingEngine
from bmoe.lm.decoding.sampling import SamplingParams
from bmoe.lm.model import build_model
from tests.lm.decoding_helpers import decode, run_all
from tests.lm.tiny_lm import encode, tiny_config

REQUESTS = [(encode("to be"), SamplingParams(max_tokens=14, temperature=1.0, seed=1)),
            (encode("that is th"), SamplingParams(max_tokens=9, temperature=0)),
            (encode("or"), SamplingParams(max_tokens=16, temperature=0.8, top_p=0.9, seed=2))]


def _log_rows(engine: DecodingEngine) -> dict[tuple[int, int], list[tuple[int, int, int, bytes, bytes]]]:
    """Every (layer, expert)'s rows as (sequence, position, produced, input bytes, output bytes), sorted (the
    order of steps aside)."""
    table = {}
    for key in engine.log.called_experts():
        rows = engine.log.rows(*key)
        table[key] = sorted(zip(rows.sequences.tolist(), rows.positions.tolist(), rows.produced.tolist(),
                                [row.numpy().tobytes() for row in rows.inputs],
                                [row.numpy().tobytes() for row in rows.outputs], strict=True))
    return table


@pytest.mark.parametrize("back", [0, 1, 5])  # tokens generated before the rollback point (0: the first one)
def test_a_rollback_mid_run_then_continuing_equals_the_run_without_it(back: int) -> None:
    model = build_model(tiny_config(), seed=7)
    reference_engine = DecodingEngine(model, decode=decode)
    reference = run_all(reference_engine, REQUESTS)
    engine = DecodingEngine(model, decode=decode)
    ids = [engine.submit(prompt, params) for prompt, params in REQUESTS]
    for _ in range(7):
        engine.step()
    engine.rollback(ids[0], len(REQUESTS[0][0]) + back)
    assert len(engine.result(ids[0]).tokens) == back
    for _ in engine.events():
        pass
    assert [engine.result(request) for request in ids] == reference
    assert _log_rows(engine) == _log_rows(reference_engine)


def test_a_finished_sequence_rolled_back_runs_again_to_the_same_end_past_the_context() -> None:
    model = build_model(tiny_config(), seed=8)
    engine = DecodingEngine(model, decode=decode)
    prompt = encode("to be, or not")  # 13 tokens + 14 slides past the 16-token context
    request = engine.submit(prompt, SamplingParams(max_tokens=14, temperature=1.2, seed=9))
    events = list(engine.events())
    finished = engine.result(request)
    for position in (len(prompt) + 12, len(prompt) + 2):  # inside the slid windows, then inside the cache
        engine.rollback(request, position)
        assert engine.busy and engine.result(request).finish_reason is None
        again = list(engine.events())
        assert engine.result(request) == finished
        assert [e.token for e in again] == [e.token for e in events][position - len(prompt):]


def test_a_rollback_outside_the_generated_tokens_is_refused_and_one_past_them_changes_nothing() -> None:
    engine = DecodingEngine(build_model(tiny_config(), seed=0))
    request = engine.submit(encode("to be"), SamplingParams(max_tokens=3))
    list(engine.events())
    for position in (4, 9, -1):
        with pytest.raises(ValueError, match=r"can roll back to a position in \[5, 8\]"):
            engine.rollback(request, position)
    finished = engine.result(request)
    engine.rollback(request, 8)  # past the last token: nothing to drop
    assert engine.result(request) == finished and not engine.busy
    engine.release(request)
    with pytest.raises(KeyError, match="no request 0"):
        engine.rollback(request, 5)
