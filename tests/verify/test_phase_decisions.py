"""Phase decisions: what the proposer builds is what the ledger's checker accepts, and nothing else.

For a table of commitment sets under every acceptance rule, the checker accepts exactly the
decisions an honest proposer could write (any supporter's CID, or ``malformed``; ``no_quorum`` with the
answers grouped by digest as its evidence) and exactly the accusations the builder writes (under
``no_quorum`` only withholding: nothing is proven against an answer); every single-field change is
refused with a reason naming the expert.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import pytest

from bmoe.ledger.schemas import SCHEMAS
from bmoe.verify.acceptance import AcceptanceRule
from bmoe.verify.phase import (
    PHASES,
    REASONS,
    STATUSES,
    Accusation,
    Decision,
    accusation_error,
    build_accusations,
    build_decision,
    decision_error,
    digest_groups,
    misbehaviour_records,
    supporter_cids,
    verdict_of,
)

EXPERT = 3
DIGESTS = ("a" * 64, "b" * 64, "c" * 64)
A, B, C = DIGESTS
FOREIGN_DIGEST = "f" * 64


def cid(digest: str) -> str:
    return f"cid-{digest[0]}"


@dataclass(frozen=True)
class Case:
    name: str
    rule: AcceptanceRule
    assigned: tuple[str, ...]
    commitments: dict[str, tuple[str, str]]

    @property
    def cids(self) -> set[str]:
        return {c for _, c in self.commitments.values()}


def case(name: str, rule: AcceptanceRule, edges: int, *votes: str, liar: str | None = None) -> Case:
    """``votes[i]`` is edge i's digest ("" for an edge that withheld); ``liar`` commits its digest
    under a CID of other bytes."""
    assigned = tuple(f"edge{i}" for i in range(edges))
    commitments = {edge: (digest, cid(digest)) for edge, digest in zip(assigned, votes, strict=False) if digest}
    if liar is not None:
        commitments[liar] = (commitments[liar][0], "cid-liar")
    return Case(name, rule, assigned, commitments)


MAJORITY, FRACTION = AcceptanceRule("majority"), AcceptanceRule("fraction", 2 / 3)
PLURALITY, SOLE = AcceptanceRule("plurality"), AcceptanceRule("sole")
CASES = [
    case("majority accepts 3 of 5", MAJORITY, 5, A, A, A, B, ""),
    case("majority: a 2-2 split has no quorum", MAJORITY, 4, A, A, B, B),
    case("majority: withholding counts against", MAJORITY, 5, A, A, "", "", B),
    case("majority: a supporter lies about its CID", MAJORITY, 5, A, A, A, B, C, liar="edge0"),
    case("fraction 2/3 accepts 4 of 6", FRACTION, 6, A, A, A, A, B, ""),
    case("fraction 2/3: 3 of 6 is no quorum", FRACTION, 6, A, A, A, B, B, B),
    case("plurality accepts the strictly largest group", PLURALITY, 5, A, A, B, C, ""),
    case("plurality: a tie accepts nothing", PLURALITY, 5, A, A, B, B, ""),
    case("sole accepts its one host", SOLE, 1, A),
    case("sole: a host that withheld", SOLE, 1, ""),
    case("nobody committed", MAJORITY, 3, "", "", ""),
]


def built(c: Case, valid: bool) -> tuple[Decision, list[Accusation]]:
    """What an honest proposer writes when the agreed bytes are (``valid``) or are not a valid result."""
    verdict = verdict_of(c.rule, c.commitments, c.assigned)
    candidates = supporter_cids(verdict, c.commitments)
    decision = build_decision(EXPERT, verdict, candidates[-1] if valid and candidates else None, c.commitments)
    return decision, build_accusations(decision, verdict, c.commitments)


def allowed_decisions(c: Case) -> list[dict[str, object]]:
    """Every decision some honest proposer could write: any supporter's CID, or malformed bytes."""
    verdict = verdict_of(c.rule, c.commitments, c.assigned)
    return [build_decision(EXPERT, verdict, v, c.commitments).to_dict()
            for v in [*supporter_cids(verdict, c.commitments), None]]


OUTCOMES = [(c, valid) for c in CASES for valid in (True, False)]
IDS = [f"{c.name}, {'valid' if valid else 'malformed'} bytes" for c, valid in OUTCOMES]


@pytest.mark.parametrize(("c", "valid"), OUTCOMES, ids=IDS)
def test_what_the_proposer_builds_the_checker_accepts(c: Case, valid: bool) -> None:
    decision, accusations = built(c, valid)
    verdict = verdict_of(c.rule, c.commitments, c.assigned)
    assert decision_error(c.rule, verdict, c.commitments, decision.to_dict()) is None
    for accusation in accusations:
        assert accusation_error(accusation.edge, accusation.record(), verdict, decision.status, c.commitments) is None


@pytest.mark.parametrize("c", CASES, ids=[c.name for c in CASES])
def test_the_checker_accepts_exactly_the_decisions_an_honest_proposer_could_write(c: Case) -> None:
    verdict = verdict_of(c.rule, c.commitments, c.assigned)
    allowed = allowed_decisions(c)
    for status, digest, claimed_cid in itertools.product(
            [*STATUSES, "rejected"], [*DIGESTS, FOREIGN_DIGEST, None], [*sorted(c.cids), "cid-other", None]):
        claim: dict[str, object] = {"expert": EXPERT, "status": status, "digest": digest, "cid": claimed_cid}
        if status == "no_quorum":
            claim["groups"] = [list(group) for group in digest_groups(c.commitments, verdict.committed)]
        reason = decision_error(c.rule, verdict, c.commitments, claim)
        assert (reason is None) == (claim in allowed), (claim, reason)
        assert reason is None or reason.startswith(f"expert {EXPERT}: ")


@pytest.mark.parametrize(("c", "valid"), OUTCOMES, ids=IDS)
def test_the_checker_accepts_exactly_the_accusations_the_builder_writes(c: Case, valid: bool) -> None:
    decision, accusations = built(c, valid)
    verdict = verdict_of(c.rule, c.commitments, c.assigned)
    for edge, reason, evidence in itertools.product(
            [*c.assigned, "outsider"], [*REASONS, "lied"], [*DIGESTS, FOREIGN_DIGEST, None]):
        claim = Accusation(edge, EXPERT, reason, evidence)
        refusal = accusation_error(edge, claim.record(), verdict, decision.status, c.commitments)
        assert (refusal is None) == (claim in accusations), (claim, refusal)
        assert refusal is None or refusal.startswith(f"expert {EXPERT}: ")


GROUPINGS = [None, [], [["edge0"]], [["edge0", "edge1"], ["edge2", "edge3"]], [["edge2", "edge3"], ["edge0", "edge1"]],
             [["edge1", "edge0"], ["edge2", "edge3"]], [["edge0", "edge1", "edge2"], ["edge3", "edge4", "edge5"]],
             [["edge3", "edge4", "edge5"], ["edge0", "edge1", "edge2"]]]
DECISION_CHANGES = {
    "status": lambda d: [s for s in [*STATUSES, "rejected"] if s != d["status"]],
    "digest": lambda d: [v for v in [*DIGESTS, FOREIGN_DIGEST, None] if v != d["digest"]],
    "cid": lambda d: [v for v in ["cid-b", "cid-c", "cid-other", None] if v != d["cid"]],
    "groups": lambda d: [v for v in GROUPINGS if v != d.get("groups")],
}


@pytest.mark.parametrize(("c", "valid"), OUTCOMES, ids=IDS)
@pytest.mark.parametrize("field", sorted(DECISION_CHANGES))
def test_every_single_field_change_to_a_built_decision_is_refused(c: Case, valid: bool, field: str) -> None:
    decision, _ = built(c, valid)
    verdict = verdict_of(c.rule, c.commitments, c.assigned)
    honest = decision.to_dict()
    for value in DECISION_CHANGES[field](honest):
        changed = {**honest, field: value}
        if changed in allowed_decisions(c):
            continue  # another supporter's CID, or malformed: a decision an honest proposer could also write
        reason = decision_error(c.rule, verdict, c.commitments, changed)
        assert reason is not None and reason.startswith(f"expert {EXPERT}: "), (changed, reason)


@pytest.mark.parametrize(("c", "valid"), OUTCOMES, ids=IDS)
def test_every_single_field_change_to_a_built_accusation_is_refused(c: Case, valid: bool) -> None:
    decision, accusations = built(c, valid)
    verdict = verdict_of(c.rule, c.commitments, c.assigned)
    for honest in accusations:
        changes = ([Accusation(e, EXPERT, honest.reason, honest.evidence) for e in [*c.assigned, "outsider"]]
                   + [Accusation(honest.edge, EXPERT, r, honest.evidence) for r in [*REASONS, "lied"]]
                   + [Accusation(honest.edge, EXPERT, honest.reason, v) for v in [*DIGESTS, FOREIGN_DIGEST, None]])
        for changed in changes:
            if changed in accusations:
                continue  # unchanged, or the same record against another edge that did the same
            refusal = accusation_error(changed.edge, changed.record(), verdict, decision.status, c.commitments)
            assert refusal is not None and refusal.startswith(f"expert {EXPERT}: "), (changed, refusal)


def test_named_reasons() -> None:
    c = CASES[0]  # edge0-2 agree on A, edge3 dissents with B, edge4 withheld
    verdict = verdict_of(c.rule, c.commitments, c.assigned)
    accepted = {"expert": EXPERT, "status": "accepted", "digest": A, "cid": cid(A)}
    reasons = {
        "rule majority accepts": {**accepted, "digest": B},
        "cid is none of the accepted group's": {**accepted, "cid": cid(B)},
        "rule majority decides digest": {**accepted, "status": "no_quorum", "digest": None, "cid": None},
        "malformed names the wrong digest": {**accepted, "status": "malformed", "digest": B, "cid": None},
        "a malformed decision records no cid": {**accepted, "status": "malformed"},
        "status must be one of": {**accepted, "status": "rejected"},
    }
    for needle, claim in reasons.items():
        assert needle in str(decision_error(c.rule, verdict, c.commitments, claim))
    accusations = {
        "edge is in the accepted group": ("edge0", "dissent", A),
        "evidence is not the edge's digest": ("edge3", "dissent", A),
        "edge did commit": ("edge3", "withheld", None),
        "a withheld record carries no evidence": ("edge4", "withheld", B),
        "edge committed nothing": ("edge4", "dissent", B),
        "edge is not assigned this expert": ("outsider", "withheld", None),
        "reason must be 'dissent' or 'withheld'": ("edge3", "lied", B),
    }
    for needle, (edge, reason, evidence) in accusations.items():
        record = {"expert": EXPERT, "reason": reason, "evidence": evidence}
        assert needle in str(accusation_error(edge, record, verdict, "accepted", c.commitments))


def test_the_supporters_of_a_malformed_group_dissent_with_their_digest() -> None:
    decision, accusations = built(CASES[0], valid=False)
    assert decision == Decision(EXPERT, "malformed", A, None)
    assert sorted((a.edge, a.reason, a.evidence) for a in accusations) == [
        ("edge0", "dissent", A), ("edge1", "dissent", A), ("edge2", "dissent", A), ("edge3", "dissent", B),
        ("edge4", "withheld", None)]


def test_the_accepted_cid_is_the_first_supporter_cid_that_checks_out() -> None:
    c = CASES[3]  # edge0 repeats the majority's digest under a CID of other bytes
    verdict = verdict_of(c.rule, c.commitments, c.assigned)
    assert supporter_cids(verdict, c.commitments) == ["cid-liar", cid(A)]
    assert build_decision(EXPERT, verdict, cid(A), c.commitments).to_dict() == {
        "expert": EXPERT, "status": "accepted", "digest": A, "cid": cid(A)}


def test_no_quorum_accuses_nobody_of_dissent_and_records_the_groups_by_digest() -> None:
    c = CASES[2]  # a 2-1 split with two silent edges: no group of 3 among 5
    decision, accusations = built(c, valid=True)
    assert decision.to_dict() == {"expert": EXPERT, "status": "no_quorum", "digest": None, "cid": None,
                                  "groups": [["edge0", "edge1"], ["edge4"]]}
    assert [(a.edge, a.reason) for a in accusations] == [("edge2", "withheld"), ("edge3", "withheld")]
    verdict = verdict_of(c.rule, c.commitments, c.assigned)
    assert verdict.dissenters == () and verdict.unresolved == ("edge0", "edge1", "edge4")
    for edge in ("edge0", "edge4"):
        record = {"expert": EXPERT, "reason": "dissent", "evidence": c.commitments[edge][0]}
        assert "no group reached quorum" in str(accusation_error(edge, record, verdict, "no_quorum", c.commitments))
    tie = CASES[1]  # 2-2: equal sizes in digest order
    tie_verdict = verdict_of(tie.rule, tie.commitments, tie.assigned)
    assert digest_groups(tie.commitments, tie_verdict.committed) == [("edge0", "edge1"), ("edge2", "edge3")]
    unordered = {**built(tie, valid=True)[0].to_dict(), "groups": [["edge2", "edge3"], ["edge0", "edge1"]]}
    assert "grouped by digest" in str(decision_error(tie.rule, tie_verdict, tie.commitments, unordered))


def test_misbehaviour_records_are_one_list_per_edge_in_expert_order() -> None:
    accusations = [Accusation("e2", 4, "withheld", None), Accusation("e1", 2, "dissent", B),
                   Accusation("e2", 1, "dissent", A)]
    assert misbehaviour_records(accusations) == {
        "e1": [{"expert": 2, "reason": "dissent", "evidence": B}],
        "e2": [{"expert": 1, "reason": "dissent", "evidence": A},
               {"expert": 4, "reason": "withheld", "evidence": None}],
    }
    assert list(misbehaviour_records(accusations)) == ["e1", "e2"]


@pytest.mark.parametrize("name", sorted(PHASES))
def test_the_phase_table_names_the_ledgers_transactions(name: str) -> None:
    phase = PHASES[name]
    assert phase.name == name
    assert phase.commit_entries in SCHEMAS[phase.commit_kind]
    assert "decisions" in SCHEMAS[phase.decision_kind]
    assert name in {"result", "update"}
