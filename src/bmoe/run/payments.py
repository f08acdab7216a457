"""A paid generation session's terms and what its validator does with them: the genesis's ``payments`` section, the
``settlement`` it seals beside each chunk, the admission check that keeps any payer from overdrawing, and the bill.

- :class:`PaymentTerms`: the price rule and each requester account's opening deposit; the rule's ``capacity`` is
  the session's max batch (the load's denominator).
- :func:`settler`: per sealed chunk, the settlement the ledger's rules ask for (``ledger/payments.py``): the tokens
  that stand per payer (the decoding's :class:`~bmoe.protocol.generation.billing.ChunkUsage`), the edges' accepted
  calls from the chunk's records object, the price for the measured load.
- :func:`payment_refusal`: why a payer cannot start a request, or None. A request reserves its worst case, its
  ``max_tokens`` at the rule's cap price, and so does every unfinished request of the same payer for the tokens it
  may still generate: what the ledger says the payer holds must cover them all, so no settlement can overdraw.
- :func:`bill`: every participant's deposited, paid, earned and balance, from a replayed state.

Must not know: HTTP, the API's shapes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from bmoe.ledger.payments import PaymentAccount, chunk_facts, settlement_payload
from bmoe.ledger.pricing import Pricing
from bmoe.ledger.state import LedgerState
from bmoe.protocol.generation.billing import ChunkUsage, served_calls
from bmoe.protocol.generation.records import decode_records
from bmoe.storage import BlobStore

Settle = Callable[[dict[str, Any], ChunkUsage], dict[str, Any] | None]  # chunk payload, usage -> settlement


@dataclass(frozen=True)
class PaymentTerms:
    """What a paid session's genesis records."""

    pricing: Pricing = field(default_factory=Pricing)
    deposits: Mapping[str, int] = field(default_factory=dict)  # requester account -> opening units

    def section(self, max_batch: int) -> dict[str, Any]:
        """The genesis's ``payments`` section, the load measured against ``max_batch`` sequences."""
        pricing = dataclasses.replace(self.pricing, capacity=max_batch)
        return {"pricing": pricing.spec(), "deposits": dict(sorted(self.deposits.items()))}


def settler(pricing: Pricing, store: BlobStore) -> Settle:
    """The settlement of each chunk (None for a chunk nobody pays for)."""
    def settle(payload: dict[str, Any], usage: ChunkUsage) -> dict[str, Any] | None:
        if not usage.tokens:
            return None
        served = served_calls(decode_records(store.get(payload["records"])), chunk_facts(payload).dissenters)
        return settlement_payload(pricing, payload["generation"], payload["chunk"], usage.active, usage.tokens,
                                  served)
    return settle


def payment_refusal(state: LedgerState, payer: str, max_tokens: int, pending: Iterable[int]) -> str | None:
    """Why ``payer`` cannot start a request of ``max_tokens``, or None. ``pending``: the tokens its unfinished
    requests may still generate. The ledger's ``state`` says what it holds."""
    spec = (state.genesis or {}).get("payments")
    if spec is None:
        return "this session takes no payments"
    cap = spec["pricing"]["cap"]
    held = state.payments.get(payer, PaymentAccount()).balance
    reserved = sum(pending) * cap
    needed = max_tokens * cap
    if held - reserved < needed:
        return (f"account {payer!r} holds {held} units ({reserved} reserved by its requests under way), less than "
                f"the {needed} that {max_tokens} tokens may cost at the cap price {cap}")
    return None


def bill(state: LedgerState) -> list[dict[str, Any]]:
    """Every participant's account: its role (requester, edge, validator), deposited, paid, earned, balance."""
    roles = {**{edge: "edge" for edge in state.edges}, **{v: "validator" for v in state.validators}}
    return [{"account": account, "role": roles.get(account, "requester"), **held.to_dict(), "balance": held.balance}
            for account, held in sorted(state.payments.items(), key=lambda item: (roles.get(item[0], ""), item[0]))]
