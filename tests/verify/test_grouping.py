"""Grouping within a bound (``protocol/comparisons/grouping.py``): deterministic for any set of answers, honest
spread kept in one group, fraud outside the bound in its own, invalid answers only with identical
bytes, and an accepted value a minority inside the group cannot steer."""

from __future__ import annotations

import hashlib
import random

import pytest
import torch

from bmoe.moe.payloads import decode_result, encode_result
from bmoe.protocol.comparisons.grouping import (
    Answer,
    Expected,
    Group,
    accepted_value,
    decode_answer,
    distance,
    group_answers,
)
from bmoe.storage import serialize_tensors
from bmoe.verify.comparison import Tolerance

ROWS, CLASSES = 20, 10
RESULT = Expected("result", rows=ROWS, classes=CLASSES)
TOLERANCE = Tolerance(result_bound=1e-4, update_bound=1e-5)


def honest_output(seed: int = 0) -> torch.Tensor:
    return torch.randn(ROWS, CLASSES, generator=torch.Generator().manual_seed(seed)) * 3  # (S, C)


def answer(edge: str, output: torch.Tensor | bytes | None) -> Answer:
    data = output if isinstance(output, bytes | type(None)) else encode_result(output)
    digest = hashlib.sha256(data if data is not None else b"absent" + edge.encode()).hexdigest()
    return Answer(edge, digest, data)


def last_bits(output: torch.Tensor, seed: int, scale: float = 1e-6) -> torch.Tensor:
    """``output`` as another honest kernel computes it: relative noise of ``scale``."""
    noise = torch.randn(output.shape, generator=torch.Generator().manual_seed(seed))  # (S, C)
    return output * (1 + scale * noise)


def edges(n: int) -> list[str]:
    return [f"{i:064x}" for i in range(n)]


def grouped(answers: list[Answer], tolerance: Tolerance = TOLERANCE) -> list[tuple[str, ...]]:
    return group_answers(answers, RESULT, tolerance).edges()


def test_honest_edges_that_differ_in_their_last_bits_form_one_group() -> None:
    base = honest_output()
    names = edges(7)
    answers = [answer(name, last_bits(base, i) if i % 2 else base) for i, name in enumerate(names)]
    assert len({a.digest for a in answers}) == 4  # the bytes do differ
    grouping = group_answers(answers, RESULT, TOLERANCE)
    assert grouping.edges() == [tuple(names)]
    assert all(d is not None and d <= TOLERANCE.result_bound for d in grouping.distances.values())


def test_fraud_outside_the_bound_is_its_own_group_with_its_distance() -> None:
    base = honest_output()
    names = edges(10)
    forged = base + 0.5 * torch.randn(base.shape, generator=torch.Generator().manual_seed(9))  # (S, C)
    answers = [answer(name, forged if i >= 7 else last_bits(base, i)) for i, name in enumerate(names)]
    grouping = group_answers(answers, RESULT, TOLERANCE)
    assert grouping.edges() == [tuple(names[:7]), tuple(names[7:])]
    assert all(grouping.distances[name] > 100 * TOLERANCE.result_bound for name in names[7:])  # type: ignore[operator]


def test_grouping_does_not_depend_on_the_order_answers_arrive_in() -> None:
    base = honest_output()
    bound = TOLERANCE.result_bound
    # a chain a - b - c - d, neighbours within the bound, a and c not: closeness is not transitive
    chain = [base, base * (1 + 0.6 * bound), base * (1 + 1.2 * bound), base * (1 + 1.8 * bound)]
    names = edges(8)
    answers = [answer(name, chain[i % 4]) for i, name in enumerate(names)]
    expected = grouped(answers)
    assert [len(g) for g in expected] == [6, 2]
    shuffler = random.Random(3)
    for _ in range(10):
        shuffled = answers[:]
        shuffler.shuffle(shuffled)
        assert grouped(shuffled) == expected


def test_invalid_answers_group_only_with_identical_bytes() -> None:
    base = honest_output()
    names = edges(7)
    nan = base.clone()
    nan[0, 0] = float("nan")
    nan_bytes = serialize_tensors({"output": nan})  # encode_result refuses NaN: an edge could still send it
    wrong_shape = encode_result(base[:5])
    answers = [answer(names[0], base), answer(names[1], base), answer(names[2], nan_bytes),
               answer(names[3], nan_bytes), answer(names[4], wrong_shape), answer(names[5], b"not safetensors"),
               answer(names[6], None)]
    grouping = group_answers(answers, RESULT, TOLERANCE)
    assert sorted(grouping.edges()) == sorted([tuple(names[:2]), tuple(names[2:4]), (names[4],), (names[5],),
                                              (names[6],)])
    assert [g.valid for g in grouping.groups][:1] == [True]
    assert grouping.distances[names[2]] is None and grouping.distances[names[6]] is None


def test_groups_are_recorded_largest_first_and_ties_keep_formation_order() -> None:
    base = honest_output()
    names = edges(4)
    far = base + 1.0
    answers = [answer(names[0], base), answer(names[1], base), answer(names[2], far), answer(names[3], far)]
    groups = grouped(answers)
    assert sorted(len(g) for g in groups) == [2, 2] and groups == grouped(list(reversed(answers)))


def test_the_accepted_value_is_the_committed_bytes_when_every_answer_is_identical() -> None:
    base = honest_output()
    answers = [answer(name, base) for name in edges(5)]
    grouping = group_answers(answers, RESULT, TOLERANCE)
    data = accepted_value(grouping, grouping.groups[0], {a.edge: a.digest for a in answers}, "result")
    assert data == encode_result(base)


@pytest.mark.parametrize("push", [1.0, -1.0])
def test_a_minority_inside_the_bound_cannot_move_the_median_outside_the_honest_range(push: float) -> None:
    base = honest_output()
    names = edges(10)
    honest = [last_bits(base, i, 3e-7) for i in range(7)]
    pushed = base + push * 0.9 * TOLERANCE.result_bound * 0.1  # within the bound of every honest answer
    answers = [answer(name, honest[i] if i < 7 else pushed) for i, name in enumerate(names)]
    grouping = group_answers(answers, RESULT, TOLERANCE)
    assert grouping.edges() == [tuple(names)]  # the attackers are inside the group
    median = decode_result(accepted_value(grouping, grouping.groups[0], {a.edge: a.digest for a in answers},
                                          "result"), ROWS, CLASSES)
    stacked = torch.stack(honest)  # (7, S, C)
    assert bool((median >= stacked.min(dim=0).values).all() and (median <= stacked.max(dim=0).values).all())


def test_the_result_distance_is_the_worst_row_and_floors_small_rows() -> None:
    a = torch.zeros(2, 3)
    b = torch.tensor([[0.0, 0.0, 0.0], [0.0, 0.001, 0.0]])
    assert distance({"output": a}, {"output": b}, "result", TOLERANCE) == pytest.approx(0.001 / 0.1)
    big = torch.full((2, 3), 100.0)
    assert distance({"output": big}, {"output": big + 1e-3}, "result", TOLERANCE) == pytest.approx(
        (3 * 1e-6) ** 0.5 / (3 * 100.0**2) ** 0.5, rel=1e-3)


def test_updates_compare_element_wise_against_the_base_experts_form() -> None:
    base = {"w": torch.ones(3, 2), "b": torch.zeros(2)}
    expected = Expected.update_like(base)
    close = {"w": base["w"] + 5e-6, "b": base["b"]}
    assert distance(base, close, "update", TOLERANCE) == pytest.approx(5e-6, rel=1e-2)  # float32 rounding of 1 + 5e-6
    assert decode_answer(serialize_tensors(close), expected) is not None
    assert decode_answer(serialize_tensors({"w": base["w"]}), expected) is None  # a tensor missing
    assert decode_answer(serialize_tensors({"w": base["w"].double(), "b": base["b"]}), expected) is None
    names = edges(3)
    far = {"w": base["w"] + 1.0, "b": base["b"]}
    answers = [Answer(n, hashlib.sha256(serialize_tensors(t)).hexdigest(), serialize_tensors(t))
               for n, t in zip(names, (base, close, far), strict=True)]
    grouping = group_answers(answers, expected, TOLERANCE)
    assert grouping.edges() == [tuple(names[:2]), (names[2],)]
    assert isinstance(grouping.groups[0], Group) and grouping.groups[0].valid
