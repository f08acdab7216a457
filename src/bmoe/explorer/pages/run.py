"""The run: its settings, the comparison (its bounds and their origin), assignment and rule the genesis puts in
force, the loss and accuracy curves, and what the audit checked."""

from __future__ import annotations

import json
from typing import Any

from bmoe.explorer.html import Html, join, pairs, row, section, table, tag
from bmoe.explorer.pages.view import View
from bmoe.explorer.svg import Series, line_chart
from bmoe.ledger.audit import AuditReport
from bmoe.run.audit import evidence_summary
from bmoe.verify.bound_window import bound_in_force


def as_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def genesis_table(view: View) -> Html:
    """What the genesis puts in force (a language model's experts counted as the ledger's slots, L x N)."""
    genesis = view.index.genesis
    state = view.index.state
    rule = genesis["rule"]
    items: list[tuple[str, Any]] = [
        ("framework", genesis["framework"]),
        ("comparison", f"{as_text(genesis['comparison'])}"
                       f"{' (groups recorded per decision)' if state.comparison.records_groups else ''}"),
        ("bound in force", bound_in_force(genesis) or "– (no tolerance)"),
        ("assignment", as_text(genesis["assignment"])),
        ("acceptance rule", rule["name"] + (f" ({rule['fraction']:.3g})" if rule["name"] == "fraction" else "")),
        ("consensus", as_text(genesis["consensus"])),
        ("experts N" if view.lm is None else "experts (ledger slots, L × N)", genesis["num_experts"]),
        ("top-K", genesis["top_k"]),
        ("edges M", len(genesis["edges"])), ("validators", len(genesis["validators"])),
        ("learning rate", genesis["lr"]), ("expert", as_text(genesis["expert_spec"])),
        ("config hash", tag("span", genesis["config_hash"], class_="mono"))]
    if "economics" in genesis:
        economics = genesis["economics"]
        items.append(("economics", f"reward {economics['reward']}, slash {economics['slash']}, "
                                   f"minimum stake {economics['min_stake']}"))
    return pairs(items, id_="genesis")


def _curves(view: View) -> Html:
    train = [task for task in view.index.tasks if task.loss is not None]
    loss = line_chart([Series("loss", [(float(task.round), task.loss or 0.0) for task in train])],
                      title="Training loss per round (recorded on the ledger)", x_label="round", y_label="loss",
                      id_="loss-curve")
    metrics = view.source.metrics()
    rounds = metrics.get("rounds", []) if metrics else []
    accuracy = [Series(name, [(float(row["round"]), float(row[key])) for row in rounds
                              if isinstance(row, dict) and isinstance(row.get(key), int | float) and "round" in row])
                for key, name in (("test_accuracy", "test"), ("batch_accuracy", "batch"))]
    if not any(series.points for series in accuracy):
        note = tag("p", "No accuracy curve: accuracies are not on the ledger, and this source keeps no "
                        "metrics.json.", class_="muted")
        return join([loss, note])
    chart = line_chart([series for series in accuracy if series.points],
                       title="Accuracy per round (the run's metrics.json)", x_label="round", y_label="accuracy",
                       y_range=(0.0, 1.0), id_="accuracy-curve")
    return row(loss, chart)


def audit_details(report: AuditReport) -> Html:
    evidence = evidence_summary(report)
    rows = [("result", tag("span", "OK", class_="ok")),
            ("blocks", f"{report.blocks} (height {report.height}), head {report.head_hash}"),
            ("checked", f"{report.transactions} transactions, {report.signatures} signatures, Merkle roots, seals "
                        f"({report.seal_rules}), state roots by replay, {report.objects_checked} required objects, "
                        f"{evidence}"),
            ("anchored to", "; ".join(report.anchored_to)),
            ("not anchored by", "; ".join(report.unanchored) or "–")]
    return pairs(rows, id_="audit")


def run(view: View) -> Html:
    config = view.config()
    settings = table(("setting", "value"), [[name, as_text(value)] for name, value in sorted(config.to_dict().items())],
                     id_="config") if config is not None else tag("p", "No readable config.json.", class_="muted")
    body = join([section("Audit", audit_details(view.report)),
                 section("In force (the genesis)", genesis_table(view)),
                 section("Curves", _curves(view)),
                 section("Settings (config.json)", settings)])
    return view.page("Run", body, active="/run")
