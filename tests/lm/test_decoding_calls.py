"""The expert calls of decoding: the call log's inputs, re-computed in one batched call per (layer, expert),
give the recorded outputs bit for bit (what verification relies on); each row says its sequence, its position
and the token its step produced; a lying expert is found by that re-computation and a rollback to the earliest
token it touched gives the honest run; a caller's malformed answer is refused."""

from __future__ import annotations

import pytest
import torch

from bmoe.lm.decoding.engine import DecodingEngine
from bmoe.lm.decoding.expert_calls import ModelExperts, RecordedExperts, recompute
from bmoe.lm.decoding.rows import stable_expert
from bmoe.lm.decoding.sampling import SamplingParams
from bmoe.lm.model import MoETransformer, SwiGLUExpert, build_model
from tests.lm.decoding_helpers import run_all
from tests.lm.tiny_lm import encode, tiny_config

REQUESTS = [(encode("to be"), SamplingParams(max_tokens=10, temperature=1.0, seed=1)),
            (encode("that is th"), SamplingParams(max_tokens=4, temperature=0)),
            (encode("o"), SamplingParams(max_tokens=13, top_k=4, seed=2))]  # 1 + 13 tokens: within the context


def test_recorded_inputs_recomputed_in_one_batched_call_per_layer_expert_give_the_recorded_outputs() -> None:
    model = build_model(tiny_config(), seed=3)
    engine = DecodingEngine(model)
    run_all(engine, REQUESTS)
    calls = engine.log.take()
    assert engine.log.called_experts() == [] and len(calls) == model.config.num_slots  # every expert served some row
    again = recompute(calls, ModelExperts(model))
    assert set(again) == set(calls)
    for key, rows in calls.items():
        assert rows.inputs.shape[0] > 4 and torch.equal(again[key], rows.outputs), key  # bit for bit


def test_each_row_names_its_sequence_position_and_the_token_its_step_produced() -> None:
    model = build_model(tiny_config(), seed=3)
    engine = DecodingEngine(model)
    run_all(engine, REQUESTS)
    k, fed = model.config.num_experts_per_tok, {}
    for layer, expert in engine.log.called_experts():
        rows = engine.log.rows(layer, expert)
        for sequence, position, produced in zip(rows.sequences.tolist(), rows.positions.tolist(),
                                                rows.produced.tolist(), strict=True):
            fed.setdefault(layer, []).append((sequence, position, produced))
    for layer in range(model.config.num_hidden_layers):
        expected = []
        for sequence, (prompt, params) in enumerate(REQUESTS):
            expected += [(sequence, p, len(prompt)) for p in range(len(prompt))]  # the prefill
            expected += [(sequence, p, p + 1) for p in range(len(prompt), len(prompt) + params.max_tokens - 1)]
        assert sorted(fed[layer]) == sorted(expected * k)  # every row reached its K experts


def test_a_rows_bits_do_not_depend_on_the_rows_that_share_its_call() -> None:
    torch.manual_seed(0)
    expert = SwiGLUExpert(32, 64)
    rows = torch.randn(40, 32)  # (n, d)
    with torch.no_grad():
        whole = stable_expert(expert, rows)
        for count in range(1, 13):
            for start in (0, 17):
                assert torch.equal(stable_expert(expert, rows[start:start + count]), whole[start:start + count])


class LyingExperts(ModelExperts):
    """The model's experts, but expert 2 of layer 1 adds 0.05 to its outputs from the step ``from_step`` on (the
    fast path lying)."""

    def __init__(self, model: MoETransformer, from_step: int) -> None:
        super().__init__(model)
        self.from_step, self.step = from_step, -1

    def __call__(self, layer: int, routed: dict[int, torch.Tensor]) -> dict[int, torch.Tensor]:
        outputs = super().__call__(layer, routed)
        self.step += layer == 0
        if layer == 1 and 2 in outputs and self.step >= self.from_step:
            outputs[2] = outputs[2] + 0.05
        return outputs


def test_a_lie_is_found_by_recomputation_and_rollbacks_to_the_first_tokens_it_touched_give_the_honest_run() -> None:
    model = build_model(tiny_config(), seed=4)
    honest = run_all(DecodingEngine(model), REQUESTS)
    engine = DecodingEngine(model, caller=LyingExperts(model, from_step=3))
    assert run_all(engine, REQUESTS) != honest
    calls = engine.log.take()
    recomputed = recompute(calls, ModelExperts(model))
    wrong = {key: ~torch.all(recomputed[key] == rows.outputs, dim=1) for key, rows in calls.items()}  # (n,) each
    assert [key for key, rows in wrong.items() if rows.any()] == [(1, 2)]
    lies = calls[(1, 2)]
    first = {}  # sequence -> the first token a wrong row touched
    for sequence, produced in zip(lies.sequences[wrong[(1, 2)]].tolist(), lies.produced[wrong[(1, 2)]].tolist(),
                                  strict=True):
        first[sequence] = min(first.get(sequence, produced), produced)
    assert first and all(produced >= len(REQUESTS[s][0]) + 3 for s, produced in first.items())  # from step 3 on
    engine.caller = ModelExperts(model)
    for sequence, produced in first.items():
        engine.rollback(sequence, produced)
    run_all(engine, [])
    assert [engine.result(request) for request in range(3)] == honest


@pytest.mark.parametrize(("answer", "message"), [
    (lambda routed: {e: x[:-1] for e, x in routed.items()}, "answered expert .* with"),
    (lambda routed: {**routed, 99: torch.zeros(1, 32)}, "expert 99 of layer 0, which no row was sent to"),
])
def test_a_callers_malformed_answer_is_refused(answer: object, message: str) -> None:
    engine = DecodingEngine(build_model(tiny_config(), seed=0), caller=lambda layer, routed: answer(routed))  # type: ignore[operator]
    engine.submit(encode("to be"), SamplingParams(max_tokens=2))
    with pytest.raises(ValueError, match=message):
        engine.step()


def test_an_expert_left_out_of_an_answer_drops_out_of_its_rows_mixtures() -> None:
    model = build_model(tiny_config(), seed=0)
    honest = ModelExperts(model)
    engine = DecodingEngine(model, caller=lambda layer, routed: {e: x for e, x in honest(layer, routed).items()
                                                                if e != 0})
    run_all(engine, REQUESTS[:1])
    assert all(expert != 0 for _, expert in engine.log.called_experts())
    assert len(engine.result(0).tokens) == 10


class FailingOnce(ModelExperts):
    """The model's experts, but the first call of layer 1 at step ``at`` raises (an edge gone)."""

    def __init__(self, model: MoETransformer, at: int) -> None:
        super().__init__(model)
        self.at, self.step, self.failed = at, -1, False

    def __call__(self, layer: int, routed: dict[int, torch.Tensor]) -> dict[int, torch.Tensor]:
        self.step += layer == 0
        if layer == 1 and self.step == self.at and not self.failed:
            self.failed = True
            raise ConnectionError("edge gone")
        return super().__call__(layer, routed)


def test_a_step_whose_caller_fails_commits_nothing_and_runs_again_to_the_same_end() -> None:
    model = build_model(tiny_config(), seed=5)
    reference = DecodingEngine(model)
    honest = run_all(reference, REQUESTS)
    engine = DecodingEngine(model, caller=FailingOnce(model, at=4))
    ids = [engine.submit(prompt, params) for prompt, params in REQUESTS]
    with pytest.raises(ConnectionError):
        list(engine.events())
    assert engine.busy
    for _ in engine.events():
        pass
    assert [engine.result(request) for request in ids] == honest
    assert engine.log.row_count() == reference.log.row_count()
    for key in reference.log.called_experts():
        assert torch.equal(engine.log.rows(*key).outputs, reference.log.rows(*key).outputs)


def test_a_generation_replayed_from_its_recorded_calls_runs_no_expert_and_gives_the_same_tokens() -> None:
    model = build_model(tiny_config(), seed=6)
    engine = DecodingEngine(model)
    original = run_all(engine, REQUESTS)
    calls = engine.log.take()
    replay = DecodingEngine(model, caller=RecordedExperts(calls))
    assert run_all(replay, REQUESTS) == original
    other = (encode("question"), SamplingParams(max_tokens=3))
    with pytest.raises(KeyError, match=r"rows sent to expert .* were never recorded"):
        run_all(DecodingEngine(model, caller=RecordedExperts(calls)), [other])
