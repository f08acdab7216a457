"""The cluster: every process's health, each validator's head and view, reloading itself while rounds seal.

The page asks the processes at every load (``cluster_health``) and reloads itself every few seconds
with a plain ``<meta http-equiv="refresh">``: no script. It does not wait for the chain's audit, so it
stays live while blocks are sealed; the chain pages audit each new head when they are opened.
"""

from __future__ import annotations

import time

from bmoe.explorer.cluster_health import ProcessHealth, ValidatorHead
from bmoe.explorer.html import Html, join, link, page, section, short, table, tag

REFRESH_S = 2


def _answer(process: ProcessHealth) -> Html:
    if process.answering is None:
        return Html("–" if process.polled_s_ago is None else f"polled {process.polled_s_ago:.1f} s ago")
    return tag("span", "healthy" if process.answering else "not answering",
               class_="ok" if process.answering else "bad")


def cluster_page(label: str, processes: list[ProcessHealth], heads: list[ValidatorHead], refresh_s: int) -> Html:
    rows = [[p.name, p.role, p.url or "–", p.pid, tag("span", p.state, class_="bad" if p.state == "stopped" else None),
             _answer(p)] for p in processes]
    head_rows = [[h.name, h.height if h.height is not None else tag("span", "not answering", class_="bad"),
                  link(f"/block/{h.head_hash}", short(h.head_hash, 16)) if h.head_hash else "–",
                  h.task_count, h.train_tasks, h.view, h.primary] for h in heads]
    down = sum(p.state == "stopped" for p in processes)
    summary = tag("p", tag("span", f"{down} of {len(processes)} processes stopped" if down else
                           f"all {len(processes)} processes running", class_="bad" if down else "ok"),
                  f" · read at {time.strftime('%H:%M:%S')}",
                  f" · reloads every {refresh_s} s (" if refresh_s else " · (",
                  link("/cluster?refresh=0", "stop") if refresh_s else link("/cluster", "reload every 2 s"), ")",
                  id="cluster-summary")
    body = join([summary,
                 section("Validators", table(("validator", "height", "head", "tasks", "training tasks", "view",
                                              "primary"), head_rows, id_="heads")),
                 section("Processes", table(("name", "role", "url", "pid", "state", "health"), rows,
                                            id_="processes"))])
    return page("Cluster", body, label=label, active="/cluster", cluster=True, refresh_s=refresh_s or None)
