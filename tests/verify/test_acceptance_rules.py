"""Acceptance rules: majority, fraction, plurality and sole, including withholding and ties."""

from __future__ import annotations

import pytest

from bmoe.verify.acceptance import AcceptanceRule, decide, required_votes

EDGES = tuple(f"e{i}" for i in range(10))


def votes(*groups: tuple[str, int]) -> dict[str, str]:
    out, i = {}, 0
    for digest, count in groups:
        for _ in range(count):
            out[EDGES[i]] = digest
            i += 1
    return out


def test_majority_needs_more_than_half_of_all_assigned_edges() -> None:
    rule = AcceptanceRule("majority")
    assert decide(rule, votes(("a", 6), ("b", 4)), EDGES).digest == "a"
    assert decide(rule, votes(("a", 5), ("b", 5)), EDGES).digest is None
    # Withholding counts against: 5 of 10 agree, 4 silent -> not a majority of M.
    verdict = decide(rule, votes(("a", 5), ("b", 1)), EDGES)
    assert verdict.digest is None and len(verdict.missing) == 4


def test_majority_names_supporters_dissenters_and_missing() -> None:
    verdict = decide(AcceptanceRule(), votes(("a", 7), ("b", 2)), EDGES)
    assert verdict.supporters == EDGES[:7]
    assert verdict.dissenters == EDGES[7:9]
    assert verdict.missing == EDGES[9:]
    assert verdict.group_sizes == {"a": 7, "b": 2}


def test_fraction_two_thirds() -> None:
    rule = AcceptanceRule("fraction", 2 / 3)
    assert required_votes(rule, 10) == 7
    assert decide(rule, votes(("a", 7), ("b", 3)), EDGES).digest == "a"
    assert decide(rule, votes(("a", 6), ("b", 4)), EDGES).digest is None
    assert required_votes(AcceptanceRule("fraction", 2 / 3), 3) == 2


def test_plurality_accepts_strict_largest_group_only() -> None:
    rule = AcceptanceRule("plurality")
    assert decide(rule, votes(("a", 3), ("b", 2), ("c", 2)), EDGES).digest == "a"
    assert decide(rule, votes(("a", 3), ("b", 3)), EDGES).digest is None
    assert decide(rule, {}, EDGES).digest is None


def test_sole_accepts_a_single_unverified_host() -> None:
    rule = AcceptanceRule("sole")
    assert decide(rule, {"e0": "x"}, ("e0",)).digest == "x"
    assert decide(rule, {}, ("e0",)).digest is None


def test_commitments_from_unassigned_edges_are_ignored() -> None:
    verdict = decide(AcceptanceRule(), {"e0": "a", "intruder": "a"}, ("e0", "e1", "e2"))
    assert verdict.digest is None and verdict.group_sizes == {"a": 1}


@pytest.mark.parametrize("bad", [{"name": "vote"}, {"name": "fraction", "fraction": 0.0},
                                 {"name": "fraction", "fraction": 1.5}])
def test_bad_rules_are_refused(bad: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        AcceptanceRule(**bad)  # type: ignore[arg-type]
