"""HTML building blocks: escaping, links, tables, the page layout with its navigation and search box.

Owns how text becomes markup. Every string is escaped unless it is :class:`Html` (markup this module or
``svg`` built), so a task id, a config value or a search query never becomes markup. The layout is
plain HTML and one inline style sheet: no script, no file fetched from anywhere.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from html import escape
from urllib.parse import quote


class Html(str):
    """Markup, already escaped; anything else passed to these helpers is escaped."""


Cell = str | int | float | None

STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:0;color:#1d2330;background:#f7f8fa}
header{background:#1d2330;color:#fff;padding:8px 16px;display:flex;gap:16px;align-items:center;flex-wrap:wrap}
header a{color:#cfe0ff;text-decoration:none}header a.on{color:#fff;font-weight:600}
header form{margin-left:auto}header input{width:28em;padding:3px 6px}
main{padding:12px 16px;max-width:1200px}h1{font-size:20px;margin:8px 0}h2{font-size:16px;margin:18px 0 6px}
table{border-collapse:collapse;background:#fff;margin:4px 0 10px}
td,th{border:1px solid #dde1e8;padding:3px 8px;text-align:left;vertical-align:top}th{background:#eef1f5}
code,.mono{font-family:ui-monospace,monospace;font-size:12px}
.ok{color:#17803d;font-weight:600}.bad{color:#b42318;font-weight:600}.muted{color:#667085}
.box{background:#fff;border:1px solid #dde1e8;padding:8px 12px;margin:8px 0}
.finding{border-color:#b42318;background:#fff5f4}
main>.row,section>.row{display:flex;gap:12px;flex-wrap:wrap;align-items:flex-start}
svg{background:#fff;border:1px solid #dde1e8;margin:4px 8px 8px 0}
"""

NAV = (("/", "Chain"), ("/tasks", "Tasks"), ("/edges", "Edges"), ("/experts", "Experts"), ("/run", "Run"))


def esc(value: Cell) -> Html:
    """``value`` as markup: :class:`Html` unchanged, anything else escaped; None as a dash."""
    if isinstance(value, Html):
        return value
    if value is None:
        return Html("–")
    if isinstance(value, float):
        return Html(escape(f"{value:.4g}"))
    return Html(escape(str(value)))


def join(parts: Iterable[Cell], sep: str = "") -> Html:
    return Html(escape(sep).join(esc(part) for part in parts))


def tag(name: str, *content: Cell, **attrs: str | None) -> Html:
    """``<name attrs>content</name>``; attribute names take ``_`` for ``-`` and ``class_`` for ``class``."""
    rendered = "".join(f' {key.rstrip("_").replace("_", "-")}="{escape(value)}"'
                       for key, value in attrs.items() if value is not None)
    return Html(f"<{name}{rendered}>{join(content)}</{name}>")


def link(href: str, text: Cell, title: str | None = None) -> Html:
    return tag("a", text, href=href, title=title)


def short(value: str, keep: int = 12) -> Html:
    """A long hash shortened, the whole of it in the tooltip."""
    return tag("span", value if len(value) <= keep else value[:keep] + "…", title=value, class_="mono")


def path_part(value: str) -> str:
    return quote(value, safe="")


def cid_link(cid: str | None) -> Html:
    """An object by CID: to what the ledger says of it (its bytes are one click further)."""
    return esc(None) if cid is None else tag("a", short(cid, 16), href=f"/object/{path_part(cid)}", title=cid)


def table(headers: Sequence[str], rows: Iterable[Sequence[Cell]], id_: str | None = None) -> Html:
    head = tag("tr", *(tag("th", h) for h in headers))
    body = join(tag("tr", *(tag("td", cell) for cell in row)) for row in rows)
    return tag("table", head, body, id=id_)


def pairs(items: Iterable[tuple[str, Cell]], id_: str | None = None) -> Html:
    """A two-column table of names and values."""
    return tag("table", join(tag("tr", tag("th", name), tag("td", value)) for name, value in items), id=id_)


def row(*content: Cell) -> Html:
    """Side by side (wrapping on a narrow window)."""
    return tag("div", *content, class_="row")


def section(title: str, *content: Cell, id_: str | None = None) -> Html:
    return tag("section", tag("h2", title), *content, id=id_)


def page(title: str, body: Cell, *, label: str, active: str = "", cluster: bool = False, query: str = "",
         refresh_s: int | None = None, lm: bool = False, generations: bool = False) -> Html:
    """A whole page: ``title`` (heading and window title), the navigation (``lm``: a language model's run, with
    its per-layer routing; ``generations``: a verified server's ledger, with its generations), ``body``."""
    nav = [*NAV, ("/cluster", "Cluster")] if cluster else list(NAV)
    if lm:
        nav.insert(nav.index(("/experts", "Experts")) + 1, ("/layers", "Layers"))
    if generations:
        nav.insert(1, ("/generations", "Generations"))
    links = join(tag("a", text, href=href, class_="on" if href == active else None) for href, text in nav)
    search = Html(f'<form action="/search" method="get" role="search"><input name="q" id="q" value="{escape(query)}" '
                  'placeholder="height, block hash, task id, edge address or CID" aria-label="search">'
                  ' <button type="submit">Search</button></form>')
    refresh = f'<meta http-equiv="refresh" content="{refresh_s}">' if refresh_s else ""
    return Html(f'<!doctype html><html lang="en"><head><meta charset="utf-8">{refresh}'
                f'<meta name="viewport" content="width=device-width,initial-scale=1">'
                f"<title>{escape(title)} · bmoe explorer</title><style>{STYLE}</style></head><body>"
                f'<header><strong>bmoe explorer</strong><span class="muted">{escape(label)}</span>{links}{search}'
                f"</header><main>{tag('h1', title)}{esc(body)}</main></body></html>")
