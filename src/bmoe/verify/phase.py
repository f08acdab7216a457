"""Phase decisions: the round's verification rules, written once.

Owns, for one expert in one phase (an edge's result, or its updated weights):

- the **verdict** from the recorded commitments and the assigned edges (the acceptance rule);
- the **decision** the proposer writes (``accepted``, ``no_quorum`` or ``malformed``, digest, CID);
- the **accusations** that follow from a verdict and that decision (``dissent`` with the committed
  digest as evidence, ``withheld``; the supporters of a malformed group dissent too). Under
  ``no_quorum`` no answer was accepted, so none is outside an accepted group: nobody is accused of
  dissent (DESIGN.md: "A record needs proof"), withholding stays a record, and the decision records
  the groups that were found (edges by digest, largest first) as the evidence for later;
- the **checks** that a claimed decision or accusation is what these rules give, each refusal a
  named reason.

The proposer builds with :func:`build_decision` and :func:`build_accusations`; the state machine
and the re-executor check with :func:`decision_error` and :func:`accusation_error` (as
execution-specs shares ``apply_body`` between building and validating a block). Whether the agreed
bytes are a valid result only a holder of the bytes can tell: the proposer passes that in as
``valid_cid``, and the ledger accepts either outcome for a group the rule picked.

Under a comparison that records groups (``tolerance``), answers are not grouped by digest: the
proposer groups them from their bytes and records the groups in each decision (largest first), and
the rule applies to the recorded groups' sizes (:func:`grouped_verdict`). Under ``exact`` only a
``no_quorum`` decision records groups: the committed answers by digest (:func:`digest_groups`).
The ledger checks that the groups partition exactly the edges that committed
(:func:`groups_error`) and that the decision follows from them; the accepted value (a new object,
the group's element-wise median) and each dissenter's recorded distance are re-derived from the
bytes by the re-executor and audit.

Must not know tensors, storage or transactions: it sees digests, CIDs, edges and verdicts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bmoe.verify.acceptance import AcceptanceRule, Verdict, decide

Commitments = Mapping[str, tuple[str, str]]  # edge -> (digest, CID) it committed for one expert


@dataclass(frozen=True)
class Phase:
    """One verified phase of a round: who commits in which transaction, who decides in which."""

    name: str
    commit_kind: str  # the edges' transaction
    commit_entries: str  # its list of (expert, digest, CID) entries
    decision_kind: str  # the validators' transaction


PHASES: Mapping[str, Phase] = {
    "result": Phase("result", "commitment", "results", "acceptance"),
    "update": Phase("update", "expert_update", "updates", "update_acceptance"),
}
STATUSES = ("accepted", "no_quorum", "malformed")
REASONS = ("dissent", "withheld")


@dataclass(frozen=True)
class Decision:
    """One expert's recorded decision: an entry of an ``acceptance`` or ``update_acceptance``."""

    expert: int
    status: str  # accepted | no_quorum | malformed
    digest: str | None  # the rule's digest (accepted, malformed), else None
    cid: str | None  # the accepted bytes' CID (accepted), else None
    groups: tuple[tuple[str, ...], ...] | None = None  # recorded groups (a grouping comparison), else None

    def to_dict(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"expert": self.expert, "status": self.status, "digest": self.digest,
                                 "cid": self.cid}
        if self.groups is not None:
            entry["groups"] = [list(group) for group in self.groups]
        return entry


@dataclass(frozen=True)
class Accusation:
    """One misbehaviour record against ``edge``: a record of a ``misbehaviour`` transaction."""

    edge: str
    expert: int
    reason: str  # dissent | withheld
    evidence: str | None  # the digest the edge committed (dissent), None (withheld)
    grouped: bool = False  # a grouping comparison: the record carries the measured distance
    distance: float | None = None  # to the first group's medoid; None: withheld, or not comparable

    def record(self) -> dict[str, Any]:
        record: dict[str, Any] = {"expert": self.expert, "reason": self.reason, "evidence": self.evidence}
        if self.grouped:
            record["distance"] = self.distance
        return record


def verdict_of(rule: AcceptanceRule, commitments: Commitments, assigned: tuple[str, ...]) -> Verdict:
    """The acceptance rule over the recorded commitments of one expert."""
    return decide(rule, {edge: digest for edge, (digest, _) in commitments.items()}, assigned)


GROUP_LABEL = "group-{:04d}"  # a grouped verdict's ``digest``: the winning group's position


def grouped_verdict(rule: AcceptanceRule, commitments: Commitments, assigned: tuple[str, ...],
                    groups: list[tuple[str, ...]]) -> Verdict:
    """The acceptance rule over recorded ``groups`` (checked by :func:`groups_error` first): each edge
    votes for its group, so the rule sees the groups' sizes; ties between equal groups go to the one
    recorded first. The verdict's ``digest`` is the winning group's label (``group-0000``), not a digest."""
    labels = {edge: GROUP_LABEL.format(index) for index, group in enumerate(groups) for edge in group}
    return decide(rule, {edge: labels[edge] for edge in commitments if edge in labels}, assigned)


def groups_error(groups: object, commitments: Commitments, assigned: tuple[str, ...]) -> str | None:
    """Why recorded ``groups`` are not a grouping of the committed answers, or None: every group a
    sorted, non-empty list of distinct edges, together exactly the assigned edges that committed, each
    once, largest group first."""
    if not isinstance(groups, list) or not all(isinstance(group, list) and group for group in groups):
        return "groups must be a list of non-empty lists of edges"
    seen = [edge for group in groups for edge in group]
    committed = sorted(edge for edge in commitments if edge in assigned)
    if sorted(seen) != committed:
        return "groups must hold exactly the edges that committed, each once"
    if any(group != sorted(group) for group in groups):
        return "each group must list its edges in sorted order"
    sizes = [len(group) for group in groups]
    if sizes != sorted(sizes, reverse=True):
        return "groups must be recorded largest first"
    return None


def digest_groups(commitments: Commitments, edges: tuple[str, ...]) -> list[tuple[str, ...]]:
    """The answers of ``edges`` grouped by the digest they committed: each group's edges sorted, the
    largest group first, equal sizes in digest order (as :func:`~bmoe.verify.acceptance.decide` ranks
    them). An ``exact`` ``no_quorum`` decision records these as its evidence."""
    by_digest: dict[str, list[str]] = {}
    for edge in sorted(edges):
        by_digest.setdefault(commitments[edge][0], []).append(edge)
    ranked = sorted(by_digest.items(), key=lambda item: (-len(item[1]), item[0]))
    return [tuple(group) for _, group in ranked]


def sample_split(commitments: Commitments, assigned: tuple[str, ...],
                 groups: list[tuple[str, ...]] | None = None) -> str | None:
    """Why a sample of ``assigned`` edges is not unanimous, or None when every one of them committed and
    all agree: one digest, or (a grouping comparison) one recorded group, checked by
    :func:`groups_error` first. A split or incomplete sample is disputed (escalated to every edge)."""
    missing = [edge for edge in assigned if edge not in commitments]
    if missing:
        return f"{len(missing)} of its {len(assigned)} sampled edges committed nothing"
    if groups is not None:
        return None if len(groups) <= 1 else f"its {len(assigned)} sampled answers fall in {len(groups)} groups"
    digests = {commitments[edge][0] for edge in assigned}
    return None if len(digests) <= 1 else f"its {len(assigned)} sampled edges committed {len(digests)} digests"


def supporter_cids(verdict: Verdict, commitments: Commitments) -> list[str]:
    """The CIDs the accepted group committed, in supporter order, each once: where the agreed bytes are."""
    return list(dict.fromkeys(commitments[edge][1] for edge in verdict.supporters))


# ---------------------------------------------------------------- building (the proposer)


def build_decision(expert: int, verdict: Verdict, valid_cid: str | None, commitments: Commitments) -> Decision:
    """The decision the proposer records. ``valid_cid``: the first of :func:`supporter_cids` whose
    bytes have the verdict's digest and are a valid result, or None when none are. A ``no_quorum``
    decision records the committed answers' :func:`digest_groups`."""
    if verdict.digest is None:
        return Decision(expert, "no_quorum", None, None, tuple(digest_groups(commitments, verdict.unresolved)))
    if valid_cid is None:
        return Decision(expert, "malformed", verdict.digest, None)
    return Decision(expert, "accepted", verdict.digest, valid_cid)


def build_grouped_decision(expert: int, verdict: Verdict, groups: list[tuple[str, ...]],
                           accepted: tuple[str, str] | None, malformed_digest: str | None) -> Decision:
    """The decision under a grouping comparison: ``accepted`` is the (digest, CID) of the accepted
    value the proposer stored; ``malformed_digest`` the winning group's one digest when its bytes are
    not a valid result (then ``accepted`` is None)."""
    recorded = tuple(groups)
    if verdict.digest is None:
        return Decision(expert, "no_quorum", None, None, recorded)
    if accepted is None:
        return Decision(expert, "malformed", malformed_digest, None, recorded)
    return Decision(expert, "accepted", accepted[0], accepted[1], recorded)


def build_accusations(decision: Decision, verdict: Verdict, commitments: Commitments,
                      distances: Mapping[str, float | None] | None = None) -> list[Accusation]:
    """The misbehaviour records that follow from ``decision``: every dissenter (and every supporter of
    a malformed group) with the digest it committed, every assigned edge that committed nothing.
    ``distances`` (a grouping comparison): each edge's measured distance, recorded with its dissent.
    Under ``no_quorum`` there is no accepted group to dissent from: only withholding is recorded."""
    grouped = distances is not None
    measured = distances or {}
    dissenting = () if decision.status == "no_quorum" else (
        verdict.dissenters + (verdict.supporters if decision.status == "malformed" else ()))
    return ([Accusation(edge, decision.expert, "dissent", commitments[edge][0], grouped, measured.get(edge))
             for edge in dissenting]
            + [Accusation(edge, decision.expert, "withheld", None, grouped) for edge in verdict.missing])


def misbehaviour_records(accusations: list[Accusation]) -> dict[str, list[dict[str, Any]]]:
    """Accusations grouped by edge (sorted), each edge's records in expert order: one ``misbehaviour``
    transaction per edge."""
    by_edge: dict[str, list[Accusation]] = {}
    for accusation in accusations:
        by_edge.setdefault(accusation.edge, []).append(accusation)
    return {edge: [a.record() for a in sorted(found, key=lambda a: a.expert)]
            for edge, found in sorted(by_edge.items())}


# ---------------------------------------------------------------- checking (ledger, re-executor)


def status_of(verdict: Verdict, accepted_cid: str | None) -> str:
    """The recorded status, from the verdict and the accepted CID the ledger kept."""
    if verdict.digest is None:
        return "no_quorum"
    return "accepted" if accepted_cid is not None else "malformed"


def decision_error(rule: AcceptanceRule, verdict: Verdict, commitments: Commitments,
                   claimed: Mapping[str, Any]) -> str | None:
    """Why ``claimed`` (an entry with expert, status, digest, cid) is not what the rule gives, or None.

    A group the rule picked may be ``accepted`` under any CID its supporters committed, or
    ``malformed``; only a holder of the bytes can tell which, and the re-executor checks that.
    """
    expert, status, digest, cid = claimed["expert"], claimed["status"], claimed["digest"], claimed["cid"]
    if status not in STATUSES:
        return f"expert {expert}: status must be one of {', '.join(STATUSES)}"
    if verdict.digest is None and status != "no_quorum":
        return f"expert {expert}: rule {rule.name} decides no quorum"
    if status != "no_quorum" and "groups" in claimed:
        return f"expert {expert}: only a no_quorum decision records groups under an exact comparison"
    if status == "malformed":
        if digest != verdict.digest:
            return f"expert {expert}: malformed names the wrong digest"
        if cid is not None:
            return f"expert {expert}: a malformed decision records no cid"
        return None
    if status == "accepted":
        if digest != verdict.digest:
            return f"expert {expert}: rule {rule.name} accepts {verdict.digest}, not {digest}"
        if cid not in supporter_cids(verdict, commitments):
            return f"expert {expert}: cid is none of the accepted group's committed CIDs"
        return None
    if verdict.digest is not None:
        return f"expert {expert}: rule {rule.name} decides digest {verdict.digest}"
    if digest is not None or cid is not None:
        return f"expert {expert}: a no_quorum decision records no digest and no cid"
    found = [list(group) for group in digest_groups(commitments, verdict.unresolved)]
    if claimed.get("groups") != found:
        return (f"expert {expert}: a no_quorum decision records the committed answers grouped by digest, "
                "largest first, equal sizes in digest order")
    return None


def grouped_decision_error(verdict: Verdict, commitments: Commitments, claimed: Mapping[str, Any]) -> str | None:
    """Why ``claimed`` does not follow from the recorded groups' verdict, or None. The ledger cannot
    tell the accepted value's digest and CID (the group's median, re-derived by the re-executor and
    audit); a malformed group's answers must all be the same bytes (only identical invalid answers
    group), and the decision names that digest."""
    expert, status, digest, cid = claimed["expert"], claimed["status"], claimed["digest"], claimed["cid"]
    if status not in STATUSES:
        return f"expert {expert}: status must be one of {', '.join(STATUSES)}"
    if verdict.digest is None:
        if status != "no_quorum" or digest is not None or cid is not None:
            return (f"expert {expert}: no recorded group meets the rule: the decision is no_quorum, "
                    "without digest or cid")
        return None
    if status == "no_quorum":
        return f"expert {expert}: the first recorded group meets the rule"
    if status == "accepted":
        return None if digest is not None and cid is not None else f"expert {expert}: accepted needs a digest and a cid"
    digests = {commitments[edge][0] for edge in verdict.supporters}
    if len(digests) != 1 or digest not in digests:
        return f"expert {expert}: only a group of identical answers can be malformed, under its digest"
    if cid is not None:
        return f"expert {expert}: a malformed decision records no cid"
    return None


def accusation_error(edge: str, claimed: Mapping[str, Any], verdict: Verdict, status: str,
                     commitments: Commitments) -> str | None:
    """Why ``claimed`` (a record with expert, reason, evidence against ``edge``) does not follow from
    ``verdict`` and the recorded ``status``, or None. Honest edges cannot be framed, and without an
    accepted group (``no_quorum``) nobody can be accused of dissent: nothing is proven."""
    expert, reason, evidence = claimed["expert"], claimed["reason"], claimed["evidence"]
    if edge not in verdict.committed + verdict.missing:
        return f"expert {expert}: edge is not assigned this expert"
    if reason == "withheld":
        if edge not in verdict.missing:
            return f"expert {expert}: edge did commit"
        if evidence is not None:
            return f"expert {expert}: a withheld record carries no evidence"
        return None
    if reason != "dissent":
        return f"expert {expert}: reason must be 'dissent' or 'withheld'"
    if status == "no_quorum":
        return f"expert {expert}: no group reached quorum, so no answer is outside an accepted group: no dissent"
    malformed_group = status == "malformed" and edge in verdict.supporters
    if edge in verdict.missing:
        return f"expert {expert}: edge committed nothing"
    if edge not in verdict.dissenters and not malformed_group:
        return f"expert {expert}: edge is in the accepted group"
    if evidence != commitments[edge][0]:
        return f"expert {expert}: evidence is not the edge's digest"
    return None
