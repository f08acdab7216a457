"""Experts: each expert's CID history, its activation ratio per round (the paper's Fig. 2, as the chain
grows), how often its results and updates were accepted, and each edge's answers for it. A language model's
experts are slots, one per (layer, expert): named so, laid out as a layer-by-expert grid, and their
activation read from their own layer's forward tasks (``explorer/lm_index.py``)."""

from __future__ import annotations

from bmoe.explorer.html import Html, cid_link, join, link, pairs, row, section, table, tag
from bmoe.explorer.lm_index import Manifest, layer_routing, slot_activations
from bmoe.explorer.model import ExpertHistory
from bmoe.explorer.pages.view import NotFound, View, block_link
from bmoe.explorer.svg import Series, bar_chart, line_chart

Activations = dict[int, list[tuple[int, str, float]]]  # expert -> (round, kind, routed share)


def _activations(view: View, manifest: Manifest | None) -> Activations:
    """Each expert's activation ratios: a classifier's from every task, a language model's from its layer's."""
    if manifest is None:
        return {h.expert: h.activations for h in view.index.experts}
    routing = layer_routing(view.index.tasks, manifest.config)
    return slot_activations(routing, manifest.config.num_local_experts)


def _ratios(activations: list[tuple[int, str, float]], kind: str = "train") -> list[tuple[float, float]]:
    return [(float(round_), share) for round_, task_kind, share in activations if task_kind == kind]


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def rate(history: ExpertHistory, phase: str) -> str:
    decided = sum(count for key, count in history.decided.items() if key.startswith(phase))
    accepted = history.decided.get(f"{phase} accepted", 0)
    return f"{accepted} of {decided}" if decided else "–"


def _grid(view: View, manifest: Manifest, means: list[float]) -> Html:
    """A language model's slots as layers (rows) by experts (columns): each its mean activation ratio."""
    config = manifest.config
    experts = config.num_local_experts
    rows = [[f"layer {layer}", *(link(f"/expert/{config.slot(layer, j)}", f"{means[config.slot(layer, j)]:.3f}",
                                      title=f"slot {config.slot(layer, j)}") for j in range(experts))]
            for layer in range(config.num_hidden_layers)]
    return section("By layer and expert (mean activation ratio; each layer's ratios sum to top-K)",
                   table(("", *(f"expert {j}" for j in range(experts))), rows, id_="experts-grid"))


def experts(view: View) -> Html:
    histories = view.index.experts
    manifest = view.manifest()
    activations = _activations(view, manifest)
    means = [_mean([share for _, _, share in activations.get(h.expert, [])]) or 0.0 for h in histories]
    rows = [[link(f"/expert/{h.expert}", view.expert_label(h.expert)), cid_link(h.cids[-1][1]), len(h.cids),
             means[h.expert], rate(h, "result"), rate(h, "update")] for h in histories]
    fig2 = bar_chart([str(h.expert) for h in histories], means, title="Mean activation ratio per expert (Fig. 2)",
                     x_label="expert", y_label="routed samples / all samples", id_="fig2")
    per_round = line_chart([Series(f"expert {h.expert}", _ratios(activations.get(h.expert, []))) for h in histories],
                           title="Activation ratio per training round", x_label="round", y_label="activation ratio",
                           width=760, y_range=(0.0, None), id_="activation-rounds")
    parts = [table(("expert", "current CID", "versions", "mean activation ratio", "results accepted",
                    "updates accepted"), rows, id_="experts"), row(fig2, per_round)]
    if manifest is not None:
        parts.insert(0, _grid(view, manifest, means))
    return view.page(f"Experts ({len(rows)})", join(parts), active="/experts")


def _edges_answers(view: View, expert: int) -> Html:
    """Each edge's answers for this expert, counted as the edges page counts them over all experts."""
    counts: dict[str, list[int]] = {}
    for task in view.index.tasks:
        for d in (*task.decisions, *task.updates):
            if d.expert != expert:
                continue
            for edges, column in ((tuple(c.edge for c in d.commits), 0), (d.supporters, 1), (d.dissenters, 2),
                                  (d.missing, 3)):
                for edge in edges:
                    counts.setdefault(edge, [0, 0, 0, 0])[column] += 1
    rows = [[view.who(edge), *counts[edge]] for edge in sorted(counts, key=view.order)]
    return table(("edge", "committed", "accepted", "dissent", "committed nothing"), rows, id_="expert-edges")


def expert(view: View, ref: str) -> Html:
    histories = view.index.experts
    if not ref.isdecimal() or int(ref) >= len(histories):
        raise NotFound(f"no expert {ref!r}: experts are 0 to {len(histories) - 1}")
    history = histories[int(ref)]
    activations = _activations(view, view.manifest()).get(history.expert, [])
    label = view.expert_label(history.expert)
    chart = line_chart([Series("training", _ratios(activations)), Series("inference", _ratios(activations, "infer"))],
                       title=f"Expert {label}: activation ratio per round", x_label="round",
                       y_label="activation ratio", width=760, y_range=(0.0, None), id_="activation-rounds")
    versions = [[block_link(height), cid_link(cid)] for height, cid in reversed(history.cids)]
    decisions = [[link(f"/task/{task.task_id}", task.task_id), block_link(task.height), d.phase,
                  tag("span", d.status, class_="ok" if d.accepted else "bad"), cid_link(d.cid), len(d.accusations)]
                 for task in reversed(view.index.tasks) for d in (*task.decisions, *task.updates)
                 if d.expert == history.expert]
    body = join([pairs([("current CID", cid_link(history.cids[-1][1])), ("versions", len(history.cids)),
                        ("results accepted", rate(history, "result")),
                        ("updates accepted", rate(history, "update"))], id_="expert-facts"),
                 chart, section("CID history (newest first)", table(("since block", "CID"), versions, id_="cids")),
                 section("Each edge's answers for this expert", _edges_answers(view, history.expert)),
                 section("Decisions", table(("task", "block", "phase", "decision", "accepted value",
                                             "misbehaviour records"), decisions, id_="decisions"))])
    return view.page(f"Expert {label}", body, active="/experts")
