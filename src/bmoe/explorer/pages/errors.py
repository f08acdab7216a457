"""The pages for what cannot be shown: an unknown name (404), a chain that fails its audit, a store that
cannot serve an object."""

from __future__ import annotations

from bmoe.explorer.html import Html, join, link, page, tag


def not_found(label: str, message: str, cluster: bool, query: str = "", title: str = "Not found") -> Html:
    body = join([tag("p", message, id="not-found"), tag("p", link("/", "back to the chain"))])
    return page(title, body, label=label, cluster=cluster, query=query)


def audit_failed(label: str, finding: str, cluster: bool) -> Html:
    """Instead of the data: what the audit found, as ``bmoe audit`` says it."""
    body = join([tag("div", tag("p", tag("strong", "The audit of this chain failed; nothing from it is shown.")),
                     tag("p", finding, id="finding", class_="mono"), class_="box finding"),
                 tag("p", "This is what `bmoe audit` reports. The explorer re-audits when the chain changes; "
                          "reload to try again.", class_="muted")])
    return page("Audit failed", body, label=label, cluster=cluster)


def unavailable(label: str, message: str, cluster: bool) -> Html:
    return page("Object unavailable", tag("p", message, id="unavailable"), label=label, cluster=cluster)
