"""A paid generation session's money, for the generations page: what each participant deposited, paid and earned
(derived by the audited replay, ``run/payments.bill``), and each chunk's settlement (its load, price and charge)."""

from __future__ import annotations

from bmoe.explorer.html import Html, join, link, path_part, section, table, tag
from bmoe.explorer.pages.view import View, block_link
from bmoe.ledger.payments import pricing_of
from bmoe.ledger.pricing import BASIS, utilisation_bp
from bmoe.run.payments import bill


def payments_section(view: View) -> Html:
    """The bill and the settlements; nothing for a chain that takes no payments."""
    state = view.index.state
    pricing = pricing_of(state.genesis or {})
    if pricing is None:
        return Html("")
    accounts = [[view.who(row["account"]) if row["role"] != "requester" else row["account"], row["role"],
                 row["deposited"], row["paid"], row["earned"], row["balance"]] for row in bill(state)]
    settlements = []
    for block in view.index.blocks:
        for tx in block.transactions:
            if tx.kind != "settlement":
                continue
            payload = tx.payload
            load = utilisation_bp(payload["active"], pricing.capacity) * 100 // BASIS
            chunk = f"{payload['generation']}/{payload['chunk']}"
            settlements.append([link(f"/chunk/{path_part(payload['generation'])}/{payload['chunk']}", chunk),
                                block_link(block.height), f"{payload['active']} of {pricing.capacity} ({load}%)",
                                payload["price"], sum(c["tokens"] for c in payload["charges"]),
                                join((f"{c['payer']} {c['amount']}" for c in payload["charges"]), ", "),
                                payload["validator"]])
    rule = tag("p", f"Price per token: base {pricing.base} x (1/2 + 2 u^2) for the batch's utilisation u, within "
                    f"[{pricing.floor}, {pricing.cap}]; the validator earns {pricing.validator_bp / 100:g}% of each "
                    "chunk's charge, the edges the rest by the accepted calls each served.", class_="muted")
    return join([section(f"Payments ({len(accounts)} accounts)", rule,
                         table(("account", "role", "deposited", "paid", "earned", "balance"), accounts,
                               id_="payments")),
                 section(f"Settlements ({len(settlements)})",
                         table(("chunk", "block", "load", "price", "tokens", "charged", "validator"), settlements,
                               id_="settlements"))])
