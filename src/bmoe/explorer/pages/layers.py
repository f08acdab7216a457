"""A language model's routing, layer by layer: the tokens each layer's router sent to each of its experts in
every round (the forward tasks' activation counts on the chain, slot ``l * N + j``), as a heat map, their sums
and how evenly each layer spread its load."""

from __future__ import annotations

from bmoe.explorer.html import Html, join, link, row, section, table, tag
from bmoe.explorer.lm_index import LayerRouting, Manifest, layer_routing
from bmoe.explorer.pages.view import NotFound, View, task_link
from bmoe.explorer.svg import PALETTE, Series, bar_chart, line_chart

LATEST = 50  # rounds a layer's table lists (the newest); its sums, and the charts, cover every round


def _heat(count: int, tokens: int, top_k: int) -> Html:
    """A count shaded by its share of the tokens (a layer routes each token to top-K experts)."""
    share = count / tokens if tokens else 0.0
    alpha = min(1.0, share * 2 / top_k) if top_k else 0.0
    return Html(f'<td style="background:rgba(31,111,235,{alpha:.2f})" title="{share:.3f} of {tokens} tokens">'
                f"{count}</td>")


def _routing_table(layer: LayerRouting, manifest: Manifest) -> Html:
    config = manifest.config
    top_k = config.num_experts_per_tok
    head = tag("tr", *(tag("th", h) for h in ("round", "task", "tokens")),
               *(tag("th", link(f"/expert/{config.slot(layer.layer, j)}", f"expert {j}"))
                 for j in range(config.num_local_experts)))
    rows = [tag("tr", tag("td", r.task.round), tag("td", task_link(r.task.task_id)), tag("td", r.tokens),
                Html("".join(_heat(count, r.tokens, top_k) for count in r.counts)))
            for r in layer.tasks[-LATEST:]]
    tokens = sum(r.tokens for r in layer.tasks)
    total = tag("tr", tag("th", "all"), tag("th", f"{len(layer.tasks)} tasks"
                                                  + (f" (the latest {LATEST} listed)" if len(layer.tasks) > LATEST
                                                     else "")), tag("th", tokens),
                Html("".join(_heat(count, tokens, top_k) for count in layer.totals)))
    return tag("table", head, join(rows), total, id=f"routing-{layer.layer}")


def _balance(layer: LayerRouting, top_k: int) -> tuple[int, float | None, float | None]:
    """Tokens, and the busiest expert's load over the mean load (1: perfectly even) and the idlest's."""
    tokens = sum(r.tokens for r in layer.tasks)
    mean = tokens * top_k / len(layer.totals) if layer.totals else 0.0
    if not mean:
        return tokens, None, None
    return tokens, max(layer.totals) / mean, min(layer.totals) / mean


def layers(view: View) -> Html:
    manifest, why = view.lm_manifest
    if manifest is None:
        raise NotFound(why or "not a language model's run: its experts have no layers (see /experts)")
    config = manifest.config
    routing = layer_routing(view.index.tasks, config)
    summary = [[f"layer {layer.layer}", len(layer.tasks), *_balance(layer, config.num_experts_per_tok)]
               for layer in routing]
    parts = [tag("p", f"{config.num_hidden_layers} layers of {config.num_local_experts} experts, top-"
                      f"{config.num_experts_per_tok}: each token is routed to {config.num_experts_per_tok} experts of "
                      "each layer. Counts are the forward tasks' activation on the chain (expert j of layer l is "
                      "the ledger's expert l × N + j); shading is the share of the task's tokens.", class_="muted"),
             table(("layer", "forward tasks", "tokens", "busiest expert / mean load", "idlest expert / mean load"),
                   summary, id_="layers")]
    for layer in routing:
        tokens = sum(r.tokens for r in layer.tasks) or 1
        chart = bar_chart([str(j) for j in range(config.num_local_experts)],
                          [count / tokens for count in layer.totals],
                          title=f"Layer {layer.layer}: share of tokens routed, all rounds", x_label="expert",
                          y_label="routed tokens / tokens", colors=[PALETTE[layer.layer % len(PALETTE)]] *
                          config.num_local_experts, width=420, id_=f"routing-chart-{layer.layer}")
        per_round = line_chart([Series(f"expert {j}", [(float(r.task.round), r.counts[j] / r.tokens)
                                                       for r in layer.tasks if r.kind == "train"])
                                for j in range(config.num_local_experts)],
                               title=f"Layer {layer.layer}: activation ratio per training round", x_label="round",
                               y_label="routed tokens / tokens", y_range=(0.0, None), width=560,
                               id_=f"routing-rounds-{layer.layer}")
        parts.append(section(f"Layer {layer.layer}", row(_routing_table(layer, manifest), chart, per_round)))
    return view.page("Routing by layer", join(parts), active="/layers")
