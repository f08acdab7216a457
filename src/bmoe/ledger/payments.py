"""Payments for generated tokens: requesters' deposits, one ``settlement`` per sealed chunk, every participant's
account derived from the chain by replay (as stakes are, ``ledger/economics.py``).

A session that takes payments says so in its genesis, ``"payments": {"pricing": {...}, "deposits": {account:
units}}``: the price rule (``ledger/pricing.py``) and what each requester account (a name such as ``alice``, the
OpenAI request's ``user``) holds to start with. A validator may credit an account later with a ``deposit``
transaction (``{"account", "amount"}``: units it received for that account).

A ``settlement``, from the validator, in the same block as the ``generation_chunk`` it settles, at most one per
chunk::

    {"generation", "chunk",
     "active": sequences decoded together in the chunk (the load), "price": units per token,
     "charges": [{"payer", "tokens", "amount"}, ...],   # by payer, in order
     "credits": [{"edge", "calls", "amount"}, ...],     # by edge, in order
     "validator": units}                               # the sealing validator's credit

It holds when: ``price`` is the rule's for ``active`` (and ``1 <= active <= capacity``); every charge is its
tokens times the price, the tokens charged are at most the chunk's (tokens a rollback discarded are not charged),
and no payer pays more than it holds; every credited edge is enrolled, served at most the chunk's calls and has no
dissent recorded in the chunk (a liar forfeits the chunk's pay); the credits are the rule's split of the charges,
adding up to them exactly. An edge's ``calls`` are the calls whose accepted output it committed (the primary whose
answer stood, and every replica that agreed): :func:`~bmoe.protocol.generation.billing.served_calls` counts them from
the chunk's records object, and ``bmoe audit`` recounts them.

Slashing is unchanged: stakes are economics' (``--stake``), payments a separate account.

Must not know: tensors, storage, the engine.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bmoe.ledger.pricing import Pricing, price_per_token, split_charge


@dataclass
class PaymentAccount:
    """What one participant deposited, paid and earned (units)."""

    deposited: int = 0
    paid: int = 0
    earned: int = 0

    @property
    def balance(self) -> int:
        return self.deposited + self.earned - self.paid

    def to_dict(self) -> dict[str, int]:
        return {"deposited": self.deposited, "paid": self.paid, "earned": self.earned}


@dataclass(frozen=True)
class ChunkFacts:
    """What a ``generation_chunk`` recorded that its settlement is checked against (kept for its block only)."""

    chunk: int
    tokens: int
    calls: int
    dissenters: frozenset[str]


def chunk_facts(payload: Mapping[str, Any]) -> ChunkFacts:
    return ChunkFacts(payload["chunk"], payload["tokens"], payload["calls"],
                      frozenset(r["edge"] for r in payload["records_against"] if r["reason"] == "dissent"))


def pricing_of(genesis: Mapping[str, Any]) -> Pricing | None:
    """The session's price rule, or None when its genesis takes no payments."""
    section = genesis.get("payments")
    return None if section is None else Pricing.from_spec(section["pricing"])


def opening_accounts(genesis: Mapping[str, Any]) -> dict[str, PaymentAccount]:
    section = genesis.get("payments")
    if section is None:
        return {}
    return {account: PaymentAccount(deposited=units) for account, units in sorted(section["deposits"].items())}


def balance_of(accounts: Mapping[str, PaymentAccount], account: str) -> int:
    held = accounts.get(account)
    return 0 if held is None else held.balance


def settlement_error(pricing: Pricing, payload: Mapping[str, Any], facts: ChunkFacts | None,
                     accounts: Mapping[str, PaymentAccount], edges: Sequence[str]) -> str | None:
    """Why ``payload`` is not a valid settlement of the chunk ``facts`` describes, or None (module docstring)."""
    generation, chunk = payload["generation"], payload["chunk"]
    if facts is None or facts.chunk != chunk:
        return f"no unsettled generation_chunk {generation!r}/{chunk} in this block"
    active, price = payload["active"], payload["price"]
    if not 1 <= active <= pricing.capacity:
        return f"active {active} is outside [1, {pricing.capacity}]"
    expected = price_per_token(pricing, active)
    if price != expected:
        return f"price {price} is not the rule's {expected} for {active} of {pricing.capacity} sequences"
    return _charges_error(payload["charges"], price, facts, accounts) or _credits_error(pricing, payload, facts, edges)


def _charges_error(charges: Sequence[Mapping[str, Any]], price: int, facts: ChunkFacts,
                   accounts: Mapping[str, PaymentAccount]) -> str | None:
    if not all(a["payer"] < b["payer"] for a, b in itertools.pairwise(charges)):
        return "charges must be in strictly increasing payer order"
    tokens = sum(charge["tokens"] for charge in charges)
    if tokens > facts.tokens:
        return f"{tokens} tokens charged, more than the chunk's {facts.tokens}"
    for charge in charges:
        payer, amount = charge["payer"], charge["amount"]
        if amount != charge["tokens"] * price:
            return f"payer {payer}: {amount} is not {charge['tokens']} tokens x {price}"
        held = balance_of(accounts, payer)
        if amount > held:
            return f"payer {payer} holds {held}, cannot pay {amount} (overdraw)"
    return None


def _credits_error(pricing: Pricing, payload: Mapping[str, Any], facts: ChunkFacts, edges: Sequence[str]
                   ) -> str | None:
    credits = payload["credits"]
    if not all(a["edge"] < b["edge"] for a, b in itertools.pairwise(credits)):
        return "credits must be in strictly increasing edge order"
    for credit in credits:
        edge = credit["edge"]
        if edge not in edges:
            return f"credit to {edge[:12]}, not an enrolled edge"
        if not 1 <= credit["calls"] <= facts.calls:
            return f"edge {edge[:12]}: {credit['calls']} calls credited, outside [1, {facts.calls}]"
        if edge in facts.dissenters:
            return f"edge {edge[:12]} has a dissent recorded in this chunk: it is not paid for it"
    charged = sum(charge["amount"] for charge in payload["charges"])
    credited = sum(credit["amount"] for credit in credits) + payload["validator"]
    if credited != charged:
        return f"credits add up to {credited}, not to the {charged} charged"
    shares, validator = split_charge(pricing, charged, {c["edge"]: c["calls"] for c in credits})
    if {c["edge"]: c["amount"] for c in credits} != shares or payload["validator"] != validator:
        return f"credits are not the rule's split of {charged} (edges {shares}, validator {validator})"
    return None


def settle(accounts: dict[str, PaymentAccount], payload: Mapping[str, Any], validator: str) -> None:
    """Apply a settlement that :func:`settlement_error` passed: payers pay, edges and the validator earn."""
    for charge in payload["charges"]:
        accounts.setdefault(charge["payer"], PaymentAccount()).paid += charge["amount"]
    for credit in payload["credits"]:
        accounts.setdefault(credit["edge"], PaymentAccount()).earned += credit["amount"]
    accounts.setdefault(validator, PaymentAccount()).earned += payload["validator"]


def settlement_payload(pricing: Pricing, generation: str, chunk: int, active: int, tokens: Mapping[str, int],
                       served: Mapping[str, int]) -> dict[str, Any]:
    """The settlement the rules ask for: ``tokens`` charged per payer, ``served`` accepted calls per edge (edges
    with a dissent in the chunk left out by the caller)."""
    price = price_per_token(pricing, active)
    charges = [{"payer": payer, "tokens": count, "amount": count * price}
               for payer, count in sorted(tokens.items()) if count > 0]
    shares, validator = split_charge(pricing, sum(c["amount"] for c in charges), served)
    credits = [{"edge": edge, "calls": served[edge], "amount": shares[edge]} for edge in sorted(shares)]
    return {"generation": generation, "chunk": chunk, "active": active, "price": price, "charges": charges,
            "credits": credits, "validator": validator}
