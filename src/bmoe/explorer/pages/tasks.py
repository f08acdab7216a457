"""Tasks: every task of the chain, and one task with the gate's activation, each expert's decision and
groups, the accepted values' CIDs, the dissenters with their evidence, and the loss."""

from __future__ import annotations

from bmoe.explorer.html import Html, cid_link, join, link, pairs, row, section, short, table, tag
from bmoe.explorer.model import ExpertDecision, TaskView
from bmoe.explorer.pages.view import NotFound, View, block_link, task_link
from bmoe.explorer.svg import bar_chart


def tasks(view: View) -> Html:
    rows = [[task_link(task.task_id), task.kind, task.round, block_link(task.height, task.block_hash),
             sum(1 for count in task.counts if count), sum(d.accepted for d in task.decisions),
             len(task.rejected) or "–", task.accusations or "–", task.loss]
            for task in reversed(view.index.tasks)]
    body = table(("task", "kind", "round", "block", "experts activated", "results accepted", "rejected",
                  "misbehaviour records", "loss"), rows, id_="tasks")
    return view.page(f"Tasks ({len(rows)})", body, active="/tasks")


def _status(decision: ExpertDecision) -> Html:
    text = decision.status + (" (disputed: every edge)" if decision.disputed else "")
    return tag("span", text, class_="ok" if decision.accepted else "bad")


def _groups(view: View, decision: ExpertDecision) -> Html:
    """The recorded groups (a grouping comparison) or the edges grouped by the digest they committed."""
    if decision.groups is not None:
        groups = [tuple(group) for group in decision.groups]
    else:
        by_digest: dict[str, list[str]] = {}
        for commit in decision.commits:
            by_digest.setdefault(commit.digest, []).append(commit.edge)
        groups = sorted((tuple(edges) for edges in by_digest.values()), key=len, reverse=True)
    return join(tag("div", f"{len(group)}: ", view.edges(group)) for group in groups) or Html("–")


def _decisions(view: View, decided: tuple[ExpertDecision, ...], id_: str) -> Html:
    rows = [[link(f"/expert/{d.expert}", view.expert_label(d.expert)), _status(d), cid_link(d.cid),
             short(d.digest or "–"),
             _groups(view, d), view.edges(d.supporters), view.edges(d.dissenters), view.edges(d.missing)]
            for d in decided]
    return table(("expert", "decision", "accepted value", "digest", "groups (size: edges)", "supporters",
                  "dissenters", "committed nothing"), rows, id_=id_)


def _evidence(view: View, task: TaskView) -> Html:
    rows = [[link(f"/expert/{d.expert}", d.expert), d.phase, _status(d), view.who(a.edge), a.reason,
             short(a.evidence, 16) if a.evidence else "–", cid_link(a.evidence_cid), a.distance]
            for d in (*task.decisions, *task.updates) for a in sorted(d.accusations, key=lambda a: view.order(a.edge))]
    if not rows:
        return tag("p", "No misbehaviour recorded in this task.", class_="muted")
    return table(("expert", "phase", "decision", "edge", "record", "evidence (committed digest)",
                  "evidence object", "distance"), rows, id_="evidence")


def _commitments(view: View, task: TaskView) -> Html:
    rows = [[link(f"/expert/{d.expert}", d.expert), d.phase, view.who(c.edge), short(c.digest, 16), cid_link(c.cid),
             "accepted group" if c.edge in d.supporters else "dissent" if c.edge in d.dissenters
             else "no quorum (nobody accused)" if d.status == "no_quorum" else "–"]
            for d in (*task.decisions, *task.updates) for c in d.commits]
    return table(("expert", "phase", "edge", "digest", "object", "in"), rows, id_="commitments")


def _one(view: View, task: TaskView) -> Html:
    facts = pairs([("block", block_link(task.height, task.block_hash)), ("kind", task.kind), ("round", task.round),
                   ("samples", task.samples), ("data", cid_link(task.data_cid)), ("gate", cid_link(task.gate_cid)),
                   ("activation", cid_link(task.activation_cid)), ("MoE output", cid_link(task.output_cid)),
                   ("loss", task.loss if task.loss is not None else "– (inference)"),
                   ("updated gate", cid_link(task.new_gate_cid))], id_="task-facts")
    shares = [count / task.samples for count in task.counts]
    chart = bar_chart([str(e) for e in range(len(shares))], shares, title="Gate activation: share of samples routed",
                      x_label="expert", y_label="activation ratio", y_range=(0.0, 1.0), id_="activation")
    parts = [row(facts, chart),
             section("Result decisions", _decisions(view, task.decisions, "decisions")),
             section("Dissenters and their evidence", _evidence(view, task))]
    if task.updates:
        parts.append(section("Update decisions (new expert weights)", _decisions(view, task.updates, "updates")))
    if task.gradient_cids:
        parts.append(section("Gradients", table(("expert", "gradient"), [
            [expert, cid_link(cid)] for expert, cid in sorted(task.gradient_cids.items())])))
    parts.append(section("Every commitment", _commitments(view, task)))
    return join(parts)


def task(view: View, task_id: str) -> Html:
    found = view.index.tasks_named(task_id)
    if not found:
        raise NotFound(f"no task {task_id!r} on the chain")
    if len(found) == 1:
        return view.page(f"Task {task_id}", _one(view, found[0]), active="/tasks")
    body = join(section(f"in block {task.height}", _one(view, task)) for task in found)
    return view.page(f"Task {task_id} ({len(found)} times on the chain)", body, active="/tasks")
