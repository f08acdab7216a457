"""A paid generation session's terms and what its validator does with them: the genesis's ``payments`` section, the
``settlement`` it seals beside each chunk, the admission check that keeps any payer from overdrawing, and the bill.

- :class:`PaymentTerms`: the price rule and each requester account's opening deposit; the rule's ``capacity`` is
  the session's max batch (the load's denominator); :func:`read_payment_terms` reads them from a JSON file
  (``bmoe serve --verified --payments FILE``).
- :func:`settler`: per sealed chunk, the settlement the ledger's rules ask for (``ledger/payments.py``): the tokens
  that stand per payer (the decoding's :class:`~bmoe.protocol.generation.billing.ChunkUsage`), the edges' accepted
  calls from the chunk's records object, the price for the measured load.
- :func:`payment_refusal`: why a payer cannot start a request, or None. A request reserves its worst case, its
  ``max_tokens`` at the rule's cap price, until it is released, and so does every unreleased request of the same
  payer: what the ledger says the payer holds must cover them all, so no settlement can overdraw (conservative: a
  request's tokens already charged stay reserved too).
- :func:`bill`: every participant's deposited, paid, earned and balance, from a replayed state;
- :class:`PaidDecoding`: a session's verified decoding that admits a request only when its payer can pay
  (:func:`payment_refusal`; :class:`PaymentRequired`, a 402 on the API, otherwise): what ``bmoe serve --verified
  --payments`` drives.

Must not know: HTTP, the API's shapes.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bmoe.ledger.payments import PaymentAccount, chunk_facts, settlement_payload
from bmoe.ledger.pricing import Pricing, PricingError
from bmoe.ledger.schemas import SCHEMAS, Limits
from bmoe.ledger.state import LedgerState
from bmoe.lm.decoding.engine import TokenEvent
from bmoe.lm.decoding.sampling import SamplingParams
from bmoe.lm.decoding.stream_mark import PrefixMark
from bmoe.protocol.generation.billing import ChunkUsage, served_calls
from bmoe.protocol.generation.records import decode_records
from bmoe.storage import BlobStore

if TYPE_CHECKING:  # run/generation.py imports this module
    from bmoe.run.generation import GenerationSession

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


class PaymentTermsError(ValueError):
    """A payments file that cannot be a session's terms (one line)."""


def read_payment_terms(path: Path) -> PaymentTerms:
    """``{"deposits": {account: units}, "pricing": {"base", "floor", "cap", "validator_bp"}}`` (pricing optional, each
    of its fields too: :class:`~bmoe.ledger.pricing.Pricing`'s defaults), checked as the genesis will check it."""
    try:
        body = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise PaymentTermsError(f"{path}: not a readable JSON file ({err})") from None
    if not isinstance(body, dict) or not set(body) <= {"deposits", "pricing"} or not isinstance(
            body.get("deposits"), dict) or not isinstance(body.get("pricing", {}), dict):
        raise PaymentTermsError(f"{path}: must be an object of 'deposits' (account -> units) and optional 'pricing'")
    unknown = sorted(set(body.get("pricing", {})) - {"base", "floor", "cap", "validator_bp"})
    if unknown:
        raise PaymentTermsError(f"{path}: unknown pricing field {unknown[0]!r} (base, floor, cap, validator_bp)")
    try:
        terms = PaymentTerms(Pricing(**body.get("pricing", {})), dict(body["deposits"]))
    except PricingError as err:
        raise PaymentTermsError(f"{path}: {err}") from None
    reason = SCHEMAS["genesis"]["payments"](terms.section(terms.pricing.capacity), Limits())
    if reason is not None:
        raise PaymentTermsError(f"{path}: {reason}")
    return terms


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
    """Why ``payer`` cannot start a request of ``max_tokens``, or None. ``pending``: the ``max_tokens`` of its
    requests not yet released. The ledger's ``state`` says what it holds."""
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


class PaymentRequired(ValueError):
    """A request whose payer cannot pay for it (the API answers 402, nothing is generated)."""

    status = 402


class PaidDecoding:
    """``session``'s verified decoding, every request charged to a payer that can pay for it (the engine's
    interface: what a scheduler drives). A request's worst case stays reserved until it is released."""

    def __init__(self, session: GenerationSession) -> None:
        self.session = session
        self.decoding = session.decoding
        self._reserved: dict[int, tuple[str, int]] = {}  # request -> (payer, max tokens)

    def __getattr__(self, name: str) -> Any:  # log, busy, step, result, receipt, verification, sealed, stats
        return getattr(self.decoding, name)

    def _admit(self, payer: str | None, params: SamplingParams) -> str:
        if payer is None:
            raise PaymentRequired("this session charges for generated tokens: name the paying account")
        pending = [tokens for who, tokens in self._reserved.values() if who == payer]
        reason = payment_refusal(self.session.node.view(), payer, params.max_tokens, pending)
        if reason is not None:
            raise PaymentRequired(reason)
        return payer

    def submit(self, prompt: list[int], params: SamplingParams, on_event: Callable[[TokenEvent], None] | None = None,
               payer: str | None = None) -> int:
        charged = self._admit(payer, params)
        request = self.decoding.submit(prompt, params, on_event, charged)
        self._reserved[request] = (charged, params.max_tokens)
        return request

    def submit_optimistic(self, prompt: list[int], params: SamplingParams,
                          on_event: Callable[[TokenEvent | PrefixMark], None], payer: str | None = None) -> int:
        charged = self._admit(payer, params)
        request = self.decoding.submit_optimistic(prompt, params, on_event, charged)
        self._reserved[request] = (charged, params.max_tokens)
        return request

    def release(self, request: int) -> None:
        self.decoding.release(request)
        self._reserved.pop(request, None)


def bill(state: LedgerState) -> list[dict[str, Any]]:
    """Every participant's account: its role (requester, edge, validator), deposited, paid, earned, balance; the
    requesters by name, then the edges in genesis order, then the validators."""
    order = {**{account: (1, "", i) for i, account in enumerate(state.edges)},
             **{account: (2, "", i) for i, account in enumerate(state.validators)}}
    roles = {1: "edge", 2: "validator"}
    ranked = sorted(state.payments.items(), key=lambda item: order.get(item[0], (0, item[0], 0)))
    return [{"account": account, "role": roles.get(order.get(account, (0, "", 0))[0], "requester"), **held.to_dict(),
             "balance": held.balance} for account, held in ranked]
