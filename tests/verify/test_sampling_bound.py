"""The error bound of sampled replication: the closed forms against a Monte-Carlo draw of replicas, the
replicas a target needs, and ``bmoe bound``'s answers and refusals."""

from __future__ import annotations

import json
import math
import random

import pytest

from bmoe.verify.sampling_bound import (
    BoundError,
    any_escape,
    escape_probability,
    replicas_needed,
)
from tests.cli.helpers import assert_user_error
from tests.cli.in_process import bmoe_here as bmoe

DRAWS = 200_000


@pytest.mark.parametrize(("fraction", "edges", "replicas"), [(0.3, 10, 1), (0.3, 10, 2), (0.3, 10, 3), (0.3, 10, 4),
                                                             (0.4, 10, 3), (0.2, 20, 2), (0.1, 10, 1)])
def test_sampling_without_replacement_escapes_as_the_bound_says(fraction: float, edges: int, replicas: int) -> None:
    rng = random.Random(f"{fraction}-{edges}-{replicas}")
    bad = set(range(int(fraction * edges + 0.5)))  # which edges collude does not matter to a uniform draw
    escaped = sum(set(rng.sample(range(edges), replicas)) <= bad for _ in range(DRAWS))
    bound = escape_probability(fraction, replicas, edges)
    sigma = math.sqrt(bound * (1 - bound) / DRAWS)
    assert abs(escaped / DRAWS - bound) <= 5 * sigma + 1e-12, (escaped / DRAWS, bound)


def test_a_large_fleet_escapes_with_f_to_the_r() -> None:
    rng = random.Random(7)
    for replicas in (1, 2, 3):
        escaped = sum(all(rng.random() < 0.3 for _ in range(replicas)) for _ in range(DRAWS))
        bound = escape_probability(0.3, replicas)
        assert bound == pytest.approx(0.3 ** replicas)
        assert abs(escaped / DRAWS - bound) <= 5 * math.sqrt(bound * (1 - bound) / DRAWS)


def test_the_replicas_a_target_needs() -> None:
    assert replicas_needed(0.3, 1e-6) == 12  # 0.3^12 = 5.3e-7 <= 1e-6 < 0.3^11
    assert replicas_needed(0.3, 1e-6, edges=10) == 4  # 3 colluders cannot fill 4 draws
    assert replicas_needed(0.1, 0.05, edges=10) == 2
    assert replicas_needed(0.0, 1e-9, edges=10) == 1
    assert replicas_needed(0.5, 1e-3) is None and replicas_needed(0.45, 1e-3, edges=10) is None  # 5 of 10
    assert any_escape(0.0, 10**6) == 0.0 and any_escape(1e-6, 1000) == pytest.approx(1 - (1 - 1e-6) ** 1000)


@pytest.mark.parametrize(("args", "needle"), [
    ((1.0, 2, 10), "f must be in [0, 1)"), ((-0.1, 2, 10), "f must be in [0, 1)"),
    ((0.3, 0, 10), "replicas r must be in [1, 10]"), ((0.3, 11, 10), "replicas r must be in [1, 10]"),
    ((0.3, 1, 0), "M must be >= 1"),
])
def test_impossible_inputs_are_refused_in_one_line(args: tuple[float, int, int], needle: str) -> None:
    with pytest.raises(BoundError, match=needle.replace("[", r"\[").replace("]", r"\]").replace("(", r"\(")
                       .replace(")", r"\)")):
        escape_probability(*args)


def test_the_bound_command_prints_the_replicas_needed_and_refuses_bad_flags() -> None:
    result = bmoe("bound", "--f", "0.3", "--epsilon", "1e-6", "--edges", "10", "--json")
    assert result.returncode == 0, result.stderr
    body = json.loads(result.stdout)
    assert body["replicas_needed"] == 4 and body["rows"][2]["per_decision"] == pytest.approx(1 / 120)
    text = bmoe("bound", "--f", "0.3", "--epsilon", "1e-6")
    assert text.returncode == 0 and "r = 12 keeps the escape probability" in text.stdout
    assert_user_error(bmoe("bound", "--f", "0.3", "--epsilon", "0"), "epsilon must be in (0, 1)")
    assert_user_error(bmoe("bound", "--f", "1.5", "--epsilon", "1e-3"), "f must be in [0, 1)")
    assert_user_error(bmoe("bound", "--f", "0.3", "--epsilon", "1e-3", "--edges", "0"), "M must be >= 1")
