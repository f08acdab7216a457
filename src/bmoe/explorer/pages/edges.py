"""Edges: each edge's profile, record, stake, earnings and slashes, now and over the chain's blocks."""

from __future__ import annotations

from bmoe.explorer.html import Html, cid_link, join, link, pairs, row, section, short, table, tag
from bmoe.explorer.model import EdgePoint
from bmoe.explorer.pages.generations import edge_section
from bmoe.explorer.pages.view import NotFound, View, task_link
from bmoe.explorer.svg import Series, line_chart
from bmoe.run.config import RunConfig


def configured_note(view: View) -> str:
    return f"configured in {view.settings_file}, not known to the ledger"


def _configured(config: RunConfig | None, index: int) -> tuple[str, str]:
    """The edge's numeric profile and behaviour as the run was set up, or dashes without a config."""
    if config is None or index >= config.edges_in_play:
        return "–", "–"
    attacker = index >= config.edges_in_play - config.malicious_edges
    return config.edge_profiles[index], config.attack if attacker else "honest"


def _row(view: View, index: int, address: str, point: EdgePoint, config: RunConfig | None) -> list[Html | str | int
                                                                                                    | None]:
    economics = view.index.state.economics
    row: list[Html | str | int | None] = [link(f"/edge/edge-{index}", f"edge-{index}"), short(address, 16),
                                          *_configured(config, index), point.committed, point.accepted, point.dissent,
                                          point.withheld]
    if economics is not None:
        eligible = point.balance is not None and point.balance >= economics.min_stake
        row += [economics.stakes[address], point.earned, point.slashed, point.balance, "yes" if eligible else "no"]
    return row


def _headers(view: View) -> list[str]:
    headers = ["edge", "address", "profile", "behaviour", "committed", "accepted", "dissent", "withheld"]
    if view.index.state.economics is not None:
        headers += ["stake", "earned", "slashed", "balance", "assignable"]
    return headers


def edges(view: View) -> Html:
    index = view.index
    config = view.config()
    rows = [_row(view, i, address, index.edge_history[address][-1], config)
            for i, address in enumerate(index.state.edges)]
    what = "balance" if index.state.economics is not None else "dissent"
    chart = line_chart([Series(f"edge-{i}", [(p.height, float(getattr(p, what) or 0))
                                             for p in index.edge_history[address]])
                        for i, address in enumerate(index.state.edges)],
                       title=f"{what.capitalize()} after each block", x_label="block height", y_label=what,
                       width=760, id_="edges-chart")
    economics = index.state.economics
    terms = (tag("p", f"Reward {economics.reward} per accepted answer, slash {economics.slash} per proven dissent, "
                      f"minimum stake {economics.min_stake} to be assigned.") if economics is not None
             else tag("p", "This run has no stake: records only.", class_="muted"))
    body = join([tag("p", f"Records replayed from the chain at height {index.state.height}; profile and behaviour "
                          f"are {configured_note(view)}.", class_="muted"),
                 table(_headers(view), rows, id_="edges"), terms, chart])
    return view.page(f"Edges ({len(rows)})", body, active="/edges")


def edge(view: View, ref: str) -> Html:
    index = view.index
    position = index.edge_index(ref)
    if position is None:
        raise NotFound(f"no edge {ref!r}: give an address, edge-N or N below {len(index.state.edges)}")
    address = index.state.edges[position]
    history = index.edge_history[address]
    config = view.config()
    profile, behaviour = _configured(config, position)
    now = history[-1]
    facts = [("address", tag("span", address, class_="mono")), ("profile", profile),
             ("behaviour", f"{behaviour} ({configured_note(view)})"), ("committed", now.committed),
             ("accepted", now.accepted),
             ("dissent", now.dissent), ("withheld", now.withheld)]
    series = [Series(name, [(p.height, float(getattr(p, name))) for p in history])
              for name in ("accepted", "dissent", "withheld")]
    charts = [line_chart(series, title="Record after each block", x_label="block height", y_label="answers",
                         id_="record-chart")]
    if index.state.economics is not None:
        facts += [("stake", index.state.economics.stakes[address]), ("earned", now.earned),
                  ("slashed", now.slashed), ("balance", now.balance)]
        charts.append(line_chart([Series(name, [(p.height, float(getattr(p, name) or 0)) for p in history])
                                  for name in ("balance", "earned", "slashed")],
                                 title="Account after each block", x_label="block height", y_label="units",
                                 id_="account-chart"))
    records = [[task_link(task.task_id), task.height, view.expert_label(d.expert), d.phase, a.reason,
                short(a.evidence or "–", 16), cid_link(a.evidence_cid)]
               for task in index.tasks for d in (*task.decisions, *task.updates) for a in d.accusations
               if a.edge == address]
    body = join([pairs(facts, id_="edge-facts"), row(*charts),
                 section(f"Misbehaviour records ({len(records)})",
                         table(("task", "block", "expert", "phase", "record", "evidence", "evidence object"), records,
                               id_="records") if records else tag("p", "None.", class_="muted")),
                 edge_section(view, address)])
    return view.page(f"Edge edge-{position}", body, active="/edges")
