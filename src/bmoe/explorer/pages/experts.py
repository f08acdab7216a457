"""Experts: each expert's CID history, its activation ratio per round (the paper's Fig. 2, as the chain
grows) and how often its results and updates were accepted."""

from __future__ import annotations

from bmoe.explorer.html import Html, cid_link, join, link, pairs, row, section, table, tag
from bmoe.explorer.model import ExpertHistory
from bmoe.explorer.pages.view import NotFound, View, block_link
from bmoe.explorer.svg import Series, bar_chart, line_chart


def _ratios(history: ExpertHistory, kind: str = "train") -> list[tuple[float, float]]:
    return [(float(round_), share) for round_, task_kind, share in history.activations if task_kind == kind]


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _rate(history: ExpertHistory, phase: str) -> str:
    decided = sum(count for key, count in history.decided.items() if key.startswith(phase))
    accepted = history.decided.get(f"{phase} accepted", 0)
    return f"{accepted} of {decided}" if decided else "–"


def experts(view: View) -> Html:
    histories = view.index.experts
    means = [_mean([share for _, _, share in h.activations]) or 0.0 for h in histories]
    rows = [[link(f"/expert/{h.expert}", h.expert), cid_link(h.cids[-1][1]), len(h.cids), means[h.expert],
             _rate(h, "result"), _rate(h, "update")] for h in histories]
    fig2 = bar_chart([str(h.expert) for h in histories], means, title="Mean activation ratio per expert (Fig. 2)",
                     x_label="expert", y_label="routed samples / all samples", id_="fig2")
    per_round = line_chart([Series(f"expert {h.expert}", _ratios(h)) for h in histories],
                           title="Activation ratio per training round", x_label="round", y_label="activation ratio",
                           width=760, y_range=(0.0, None), id_="activation-rounds")
    body = join([table(("expert", "current CID", "versions", "mean activation ratio", "results accepted",
                        "updates accepted"), rows, id_="experts"), row(fig2, per_round)])
    return view.page(f"Experts ({len(rows)})", body, active="/experts")


def expert(view: View, ref: str) -> Html:
    histories = view.index.experts
    if not ref.isdecimal() or int(ref) >= len(histories):
        raise NotFound(f"no expert {ref!r}: experts are 0 to {len(histories) - 1}")
    history = histories[int(ref)]
    chart = line_chart([Series("training", _ratios(history)), Series("inference", _ratios(history, "infer"))],
                       title=f"Expert {history.expert}: activation ratio per round", x_label="round",
                       y_label="activation ratio", width=760, y_range=(0.0, None), id_="activation-rounds")
    versions = [[block_link(height), cid_link(cid)] for height, cid in reversed(history.cids)]
    decisions = [[link(f"/task/{task.task_id}", task.task_id), block_link(task.height), d.phase,
                  tag("span", d.status, class_="ok" if d.accepted else "bad"), cid_link(d.cid), len(d.accusations)]
                 for task in reversed(view.index.tasks) for d in (*task.decisions, *task.updates)
                 if d.expert == history.expert]
    body = join([pairs([("current CID", cid_link(history.cids[-1][1])), ("versions", len(history.cids)),
                        ("results accepted", _rate(history, "result")),
                        ("updates accepted", _rate(history, "update"))], id_="expert-facts"),
                 chart, section("CID history (newest first)", table(("since block", "CID"), versions, id_="cids")),
                 section("Decisions", table(("task", "block", "phase", "decision", "accepted value",
                                             "misbehaviour records"), decisions, id_="decisions"))])
    return view.page(f"Expert {history.expert}", body, active="/experts")
