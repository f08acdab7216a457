"""What the ledger checks of a grouped decision without any tensor: the recorded groups partition the
edges that committed, largest first; the rule applies to their sizes; a decision and a dissent record
must follow from them; the schema asks for groups and distances exactly when the comparison records them."""

from __future__ import annotations

import pytest

from bmoe.ledger.schemas import SCHEMAS, Limits
from bmoe.verify.acceptance import AcceptanceRule
from bmoe.verify.phase import (
    build_accusations,
    build_grouped_decision,
    grouped_decision_error,
    grouped_verdict,
    groups_error,
)

E = [f"{i:064x}" for i in range(5)]
D = [f"{i:02x}" * 32 for i in range(5)]
CID = "bafkrei" + "a" * 52
COMMITTED = {E[0]: (D[0], CID), E[1]: (D[1], CID), E[2]: (D[2], CID), E[3]: (D[3], CID)}  # E[4] withheld
MAJORITY = AcceptanceRule("majority")


@pytest.mark.parametrize(("groups", "reason"), [
    ([[E[0], E[1], E[2]], [E[3]]], None),
    ([[E[0], E[1]], [E[2]], [E[3]]], None),
    ([[E[0], E[1], E[2]]], "exactly the edges that committed"),  # E[3] left out
    ([[E[0], E[1], E[2]], [E[3]], [E[4]]], "exactly the edges that committed"),  # E[4] committed nothing
    ([[E[0], E[1], E[2]], [E[3], E[3]]], "exactly the edges that committed"),
    ([[E[1], E[0], E[2]], [E[3]]], "sorted order"),
    ([[E[3]], [E[0], E[1], E[2]]], "largest first"),
    ([[E[0], E[1], E[2]], []], "non-empty lists"),
    ("everyone", "non-empty lists"),
])
def test_recorded_groups_must_partition_the_committed_edges_largest_first(groups: object, reason: str | None) -> None:
    found = groups_error(groups, COMMITTED, tuple(E))
    assert found is None if reason is None else reason in str(found)


def test_the_rule_applies_to_the_recorded_groups_sizes() -> None:
    accepted = grouped_verdict(MAJORITY, COMMITTED, tuple(E), [(E[0], E[1], E[2]), (E[3],)])
    assert accepted.supporters == (E[0], E[1], E[2]) and accepted.dissenters == (E[3],) and accepted.missing == (E[4],)
    split = grouped_verdict(MAJORITY, COMMITTED, tuple(E), [(E[0], E[1]), (E[2], E[3])])
    assert split.digest is None  # 2 of 5 is no majority
    tie = grouped_verdict(AcceptanceRule("plurality"), COMMITTED, tuple(E), [(E[0], E[1]), (E[2], E[3])])
    assert tie.digest is None


def test_a_decision_must_follow_from_the_groups() -> None:
    groups = [(E[0], E[1], E[2]), (E[3],)]
    verdict = grouped_verdict(MAJORITY, COMMITTED, tuple(E), groups)
    accepted = build_grouped_decision(0, verdict, groups, (D[4], CID), None).to_dict()
    assert accepted["groups"] == [list(g) for g in groups]
    assert grouped_decision_error(verdict, COMMITTED, accepted) is None
    assert "first recorded group meets the rule" in str(grouped_decision_error(
        verdict, COMMITTED, {**accepted, "status": "no_quorum", "digest": None, "cid": None}))
    # a malformed group must be identical bytes: these three committed three digests
    assert "only a group of identical answers" in str(grouped_decision_error(
        verdict, COMMITTED, {**accepted, "status": "malformed", "digest": D[0], "cid": None}))
    split = [(E[0], E[1]), (E[2], E[3])]
    none = grouped_verdict(MAJORITY, COMMITTED, tuple(E), split)
    assert "decision is no_quorum" in str(grouped_decision_error(none, COMMITTED, accepted))


def test_dissent_records_carry_the_measured_distance() -> None:
    groups = [(E[0], E[1], E[2]), (E[3],)]
    verdict = grouped_verdict(MAJORITY, COMMITTED, tuple(E), groups)
    decision = build_grouped_decision(0, verdict, groups, (D[4], CID), None)
    records = [a.record() for a in build_accusations(decision, verdict, COMMITTED, {E[3]: 0.25})]
    assert records == [{"expert": 0, "reason": "dissent", "evidence": D[3], "distance": 0.25},
                       {"expert": 0, "reason": "withheld", "evidence": None, "distance": None}]


def test_the_schema_asks_for_groups_and_distances_exactly_under_a_grouping_comparison() -> None:
    decisions = SCHEMAS["update_acceptance"]["decisions"]
    plain = {"expert": 0, "status": "no_quorum", "digest": None, "cid": None}
    grouped = {**plain, "groups": [[E[0]], [E[1]]]}
    # exact: groups may be recorded (a no_quorum's evidence; the state machine says when they must be)
    assert decisions([plain], Limits()) is None and decisions([grouped], Limits()) is None
    assert decisions([{**plain, "groups": [["not-an-edge"]]}], Limits()) is not None
    assert decisions([grouped], Limits(grouped=True)) is None and decisions([plain], Limits(grouped=True)) is not None
    records = SCHEMAS["misbehaviour"]["records"]
    record = {"expert": 0, "reason": "dissent", "evidence": D[0]}
    assert records([record], Limits()) is None and records([record], Limits(grouped=True)) is not None
    assert records([{**record, "distance": 1e-3}], Limits(grouped=True)) is None
    assert records([{**record, "distance": -1.0}], Limits(grouped=True)) is not None
