"""The attacks on expert calls (edge/attacks/expert_output.py): each kind lies on exactly the rows it records, the
way its kind says (a quantised expert, another expert, zeros, the inputs, a replay, noise of its scale), never
touching its arguments; a seed fixes the strikes; bad arguments are refused; a greedy generation through a liar
diverges from the honest one, and through an attack that never strikes equals it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from bmoe.edge.attacks.expert_output import (
    OUTPUT_ATTACKS,
    AttackedExperts,
    ExpertOutputAttack,
    Strike,
    fake_quantise,
    make_output_attack,
    model_experts,
)
from bmoe.lm.decoding.engine import complete
from bmoe.lm.decoding.expert_calls import ExpertCaller, ModelExperts
from bmoe.lm.decoding.rows import stable_expert
from bmoe.lm.decoding.sampling import SamplingParams
from bmoe.lm.model import MoETransformer
from tests.lm.decoding_helpers import CountingExperts
from tests.lm.tiny_models import tiny_model

DOCS = Path(__file__).resolve().parents[2] / "docs" / "lm.md"
MODEL = tiny_model()  # d = 32, 2 layers, 4 experts; never changed by the tests
D = MODEL.config.hidden_size


def honest_call(layer: int, expert: int, rows: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Random rows (rows, d) and the model's expert's honest outputs for them."""
    inputs = torch.randn(rows, D, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        return inputs, stable_expert(model_experts(MODEL)(layer, expert), inputs)


def attacked(attack: ExpertOutputAttack, calls: list[tuple[int, int, int]]) -> list[tuple[torch.Tensor, ...]]:
    """Each (layer, expert, rows) call through ``attack``: its inputs, honest outputs and the attack's answer."""
    answered = []
    for seed, (layer, expert, rows) in enumerate(calls):
        inputs, outputs = honest_call(layer, expert, rows, seed)
        answered.append((inputs, outputs, attack(layer, expert, inputs, outputs)))
    return answered


def altered_rows(outputs: torch.Tensor, answer: torch.Tensor) -> tuple[int, ...]:
    return tuple((answer != outputs).any(dim=1).nonzero().flatten().tolist())


CALLS = [(0, 1, 5), (1, 3, 1), (0, 1, 6), (1, 3, 4), (0, 2, 3)]


@pytest.mark.parametrize("kind", OUTPUT_ATTACKS)
@pytest.mark.parametrize("rows", ["all", "one"])
def test_each_kind_alters_exactly_the_rows_its_strikes_record(kind: str, rows: str) -> None:
    attack = make_output_attack(kind, MODEL, seed=1, rows=rows)
    answered = attacked(attack, CALLS)
    recorded = {(s.layer, s.expert, s.call_index): s.rows for s in attack.strikes}
    seen: dict[tuple[int, int], int] = {}
    for (layer, expert, n), (_, outputs, answer) in zip(CALLS, answered, strict=True):
        index = seen[(layer, expert)] = seen.get((layer, expert), -1) + 1
        assert answer.shape == outputs.shape and answer.dtype == outputs.dtype
        first_stale = kind == "stale" and index == 0  # nothing to replay yet: honest, no strike
        expected = () if first_stale else (tuple(range(n)) if rows == "all" else None)
        altered = altered_rows(outputs, answer)
        assert recorded.get((layer, expert, index), ()) == altered
        if expected is None:
            assert len(altered) == 1
        else:
            assert altered == expected
    assert attack.name == kind


def test_each_kind_lies_the_way_it_says() -> None:
    (layer, expert, n), lookup = CALLS[0], model_experts(MODEL)
    inputs, outputs = honest_call(layer, expert, n, seed=0)
    answers = {kind: make_output_attack(kind, MODEL, seed=1)(layer, expert, inputs, outputs)
               for kind in OUTPUT_ATTACKS}
    assert torch.equal(answers["zero"], torch.zeros_like(outputs))
    assert torch.equal(answers["identity"], inputs)
    with torch.no_grad():
        assert torch.equal(answers["swap"], stable_expert(lookup(layer, (expert + 1) % 4), inputs))
    relative = (answers["noise"] - outputs).norm(dim=1) / outputs.norm(dim=1)  # (n,)
    assert ((relative > 2e-4) & (relative < 5e-3)).all()  # about 1e-3: the default scale, of each row's RMS
    int8, int4 = ((answers[k] - outputs).norm() / outputs.norm() for k in ("int8", "int4"))
    assert 0 < int8 < int4 < 0.5  # a cheaper expert: close, and the coarser the further


def test_a_stale_replay_answers_the_last_row_it_computed_for_that_expert() -> None:
    attack = make_output_attack("stale", MODEL, seed=1)
    (_, first, answer), (_, other, other_answer), (_, _, later) = attacked(attack, [(0, 1, 5), (1, 3, 2), (0, 1, 3)])
    assert torch.equal(answer, first)  # the first call of (0, 1): nothing to replay
    assert torch.equal(other_answer, other)  # nor for (1, 3): a replay is of the same (layer, expert)
    assert torch.equal(later, first[-1].expand(3, D))
    assert attack.strikes == [Strike(0, 1, 1, (0, 1, 2))]


def test_fake_quantisation_rounds_each_output_channel_to_its_own_symmetric_grid() -> None:
    weight = torch.randn(6, 10, generator=torch.Generator().manual_seed(0))
    weight[2] = 0
    for bits in (8, 4):
        levels = 2 ** (bits - 1) - 1
        step = weight.abs().amax(dim=1, keepdim=True) / levels  # (6, 1)
        quantised = fake_quantise(weight, bits)
        assert quantised.dtype == torch.float32 and torch.equal(quantised[2], weight[2])
        kept = step.squeeze(1) > 0
        grid = quantised[kept] / step[kept]
        assert torch.allclose(grid, grid.round(), atol=1e-4) and grid.abs().max() <= levels + 1e-4
        assert ((quantised - weight).abs() <= step / 2 + 1e-6).all()
        assert torch.allclose(quantised.abs().amax(dim=1), weight.abs().amax(dim=1))  # the largest is on the grid


def test_probability_zero_never_strikes_and_one_always_does() -> None:
    for kind in OUTPUT_ATTACKS:
        never = make_output_attack(kind, MODEL, seed=2, probability=0.0)
        assert all(torch.equal(o, a) for _, o, a in attacked(never, CALLS)) and never.strikes == []
        always = make_output_attack(kind, MODEL, seed=2, probability=1.0)
        attacked(always, CALLS)
        firsts = len({(layer, expert) for layer, expert, _ in CALLS}) if kind == "stale" else 0  # nothing to replay
        assert len(always.strikes) == len(CALLS) - firsts


def test_a_seed_fixes_the_strikes_and_the_kinds_strike_the_same_calls() -> None:
    calls = [(i % 2, i % 4, 1 + i % 5) for i in range(60)]

    def strikes(kind: str, seed: int) -> list[Strike]:
        attack = make_output_attack(kind, MODEL, seed=seed, probability=0.4, rows="one")
        attacked(attack, calls)
        return attack.strikes

    first = strikes("zero", 7)
    assert first == strikes("zero", 7) and first != strikes("zero", 8)
    assert 10 <= len(first) <= 40  # about 0.4 of 60
    assert strikes("int4", 7) == first


def test_the_attacks_leave_their_arguments_untouched() -> None:
    for kind in OUTPUT_ATTACKS:
        attack = make_output_attack(kind, MODEL, seed=3)
        for seed, rows in enumerate((4, 3)):
            inputs, outputs = honest_call(0, 2, rows, seed)
            kept = inputs.clone(), outputs.clone()
            attack(0, 2, inputs, outputs)
            assert torch.equal(inputs, kept[0]) and torch.equal(outputs, kept[1]), kind


@pytest.mark.parametrize(("arguments", "message"), [
    ({"kind": "scale"}, "unknown expert-output attack 'scale'"),
    ({"probability": 1.5}, "probability must be a number in [0, 1], got 1.5"),
    ({"probability": -0.1}, "probability must be a number in [0, 1]"),
    ({"probability": float("nan")}, "probability must be a number in [0, 1]"),
    ({"probability": True}, "probability must be a number in [0, 1]"),
    ({"rows": "two"}, "rows must be one of all, one, got 'two'"),
    ({"seed": 1.5}, "seed must be an integer"),
    ({"kind": "noise", "scale": 0.0}, "scale must be a finite number > 0"),
    ({"kind": "noise", "scale": float("inf")}, "scale must be a finite number > 0"),
    ({"kind": "swap", "experts": model_experts(MODEL)}, "swap needs num_experts"),
    ({"experts": 3}, "experts must be an MoETransformer"),
])
def test_bad_arguments_are_refused_naming_the_problem(arguments: dict[str, object], message: str) -> None:
    given = {"kind": "zero", "experts": MODEL, "seed": 0, **arguments}
    with pytest.raises(ValueError) as refused:
        make_output_attack(**given)  # type: ignore[arg-type]
    assert message in str(refused.value)


def test_a_call_whose_outputs_do_not_match_its_inputs_is_refused() -> None:
    inputs, outputs = honest_call(0, 0, 3, seed=0)
    with pytest.raises(ValueError, match="must both be"):
        make_output_attack("zero", MODEL, seed=0)(0, 0, inputs, outputs[:2])


def test_a_lookup_serves_the_kinds_that_recompute_an_expert() -> None:
    inputs, outputs = honest_call(1, 3, 4, seed=0)
    for kind in ("int8", "swap"):
        by_model = make_output_attack(kind, MODEL, seed=0)(1, 3, inputs, outputs)
        by_lookup = make_output_attack(kind, model_experts(MODEL), seed=0, num_experts=4)(1, 3, inputs, outputs)
        assert torch.equal(by_model, by_lookup)


def greedy(model: MoETransformer, caller: ExpertCaller) -> list[int]:
    return complete(model, [1, 2, 3, 4], SamplingParams(max_tokens=12, temperature=0), caller=caller).tokens


def test_a_greedy_generation_through_a_liar_diverges_and_through_a_spared_call_equals_the_honest_one() -> None:
    honest = greedy(MODEL, ModelExperts(MODEL))
    zero, counted = make_output_attack("zero", MODEL, seed=0), CountingExperts(MODEL)
    assert greedy(MODEL, AttackedExperts(counted, zero)) != honest
    calls = [(layer, expert) for layer, experts in counted.calls for expert in experts]
    assert [(s.layer, s.expert) for s in zero.strikes] == calls  # every expert call of every step struck
    spared = make_output_attack("zero", MODEL, seed=0, probability=0.0)
    assert greedy(MODEL, AttackedExperts(ModelExperts(MODEL), spared)) == honest and spared.strikes == []
    one_row = make_output_attack("swap", MODEL, seed=0, probability=0.1, rows="one")
    greedy(MODEL, AttackedExperts(ModelExperts(MODEL), one_row))
    assert one_row.strikes and all(len(s.rows) == 1 for s in one_row.strikes)


def test_the_docs_example_runs() -> None:
    section = DOCS.read_text().split("## Attacks on expert calls\n", 1)[1].split("\n## ", 1)[0]
    (snippet,) = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    namespace: dict[str, object] = {"__name__": "docs"}
    exec(compile(snippet, str(DOCS), "exec"), namespace)
    assert namespace["kind"] == OUTPUT_ATTACKS[-1]  # the loop went through every kind
