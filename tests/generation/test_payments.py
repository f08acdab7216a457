"""Paying for verified generation: a settlement beside every paid chunk, refused when its price, totals or payer's
balance are wrong, and every participant's account derived from the chain by replay."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bmoe.ledger.chainstore import ChainStore
from bmoe.ledger.errors import InvalidTransaction
from bmoe.ledger.keys import Identity
from bmoe.ledger.payments import PaymentAccount
from bmoe.ledger.pricing import Pricing, price_per_token
from bmoe.ledger.state import LedgerState, apply_transaction, begin_block
from bmoe.ledger.transactions import Transaction, sign_transaction
from bmoe.lm.decoding.sampling import SamplingParams
from bmoe.protocol.generation.billing import active_sequences, settlement_mismatch
from bmoe.protocol.generation.records import decode_records
from bmoe.protocol.generation.replay import audit_generation
from bmoe.run.generation import GenerationSession
from bmoe.run.lm.artifacts import chain_states
from bmoe.run.payments import PaidDecoding, PaymentRequired, PaymentTerms, bill, payment_refusal
from tests.generation.helpers import model, session
from tests.generation.paid_session import PAYERS, TERMS, paid_session


@dataclass(frozen=True)
class PaidRun:
    session: GenerationSession
    run_dir: Path
    blocks: list[Any]
    states: list[LedgerState]


@pytest.fixture(scope="module")
def paid(tmp_path_factory: pytest.TempPathFactory) -> PaidRun:
    run_dir = tmp_path_factory.mktemp("paid")
    s = paid_session(run_dir)
    with ChainStore(run_dir / "chain.sqlite", readonly=True) as chain:
        blocks = list(chain.iter_blocks())
    return PaidRun(s, run_dir, blocks, list(chain_states(run_dir / "chain.sqlite")))


def _settled(paid: PaidRun) -> list[tuple[int, dict[str, Any], dict[str, Any]]]:
    """(height, chunk payload, settlement payload) of every settled chunk."""
    found = []
    for block in paid.blocks[1:]:
        kinds = [tx.kind for tx in block.transactions]
        if "settlement" in kinds:
            assert kinds == ["generation_chunk", "settlement"]
            chunk, settlement = (dict(tx.payload) for tx in block.transactions)
            found.append((block.header.height, chunk, settlement))
    return found


def test_every_chunk_is_settled_in_its_own_block_at_the_rule_price(paid: PaidRun) -> None:
    settled = _settled(paid)
    assert len(settled) == len(paid.blocks) - 1
    pricing = Pricing.from_spec(paid.states[0].genesis["payments"]["pricing"])  # type: ignore[index]
    for _, chunk, settlement in settled:
        records = decode_records(paid.session.store.get(chunk["records"]))
        assert settlement["active"] == active_sequences(records) <= 4
        assert settlement["price"] == price_per_token(pricing, settlement["active"])
        assert sum(c["tokens"] for c in settlement["charges"]) <= chunk["tokens"]
        assert settlement_mismatch(records, chunk, settlement) is None


def test_the_payers_pay_for_every_token_that_stands_and_the_payees_earn_it_all(paid: PaidRun) -> None:
    accounts = paid.session.node.view().payments
    charged = {payer: 0 for payer in set(PAYERS)}
    for _, _, settlement in _settled(paid):
        for charge in settlement["charges"]:
            charged[charge["payer"]] += charge["tokens"]
    tokens = {payer: 0 for payer in set(PAYERS)}
    for request, payer in enumerate(PAYERS):
        tokens[payer] += len(paid.session.decoding.result(request).tokens)
    assert charged == tokens
    assert sum(a.paid for a in accounts.values()) == sum(a.earned for a in accounts.values()) > 0
    assert accounts["carol"] == PaymentAccount(deposited=5)


def test_a_lying_edge_is_not_paid_for_a_chunk_where_its_dissent_is_recorded(paid: PaidRun) -> None:
    liar_address = paid.session.edges[4].address
    caught = [(chunk, settlement) for _, chunk, settlement in _settled(paid)
              if any(r["edge"] == liar_address and r["reason"] == "dissent" for r in chunk["records_against"])]
    assert caught
    for _, settlement in caught:
        assert liar_address not in {c["edge"] for c in settlement["credits"]}


def test_the_accounts_replayed_from_the_chain_are_the_live_ledgers(paid: PaidRun) -> None:
    replayed = paid.states[-1]
    assert replayed.payments == paid.session.node.view().payments
    rows = bill(replayed)
    assert {row["role"] for row in rows} == {"requester", "edge", "validator"}
    assert all(row["balance"] == row["deposited"] + row["earned"] - row["paid"] for row in rows)


# ---------------------------------------------------------------- refused settlements


def _settle(paid: PaidRun, change: Any = None, before: LedgerState | None = None) -> str | None:
    """Why the first settled chunk's settlement, changed by ``change(payload)``, would be refused, or None."""
    height, chunk, settlement = _settled(paid)[0]
    working = begin_block(before if before is not None else paid.states[height - 1])
    validator: Identity = paid.session.validator
    nonce = working.next_nonce(validator.address)
    apply_transaction(working, sign_transaction(validator, "generation_chunk", chunk, nonce))
    payload = copy.deepcopy(settlement)
    if change is not None:
        change(payload)
    tx: Transaction = sign_transaction(validator, "settlement", payload, nonce + 1)
    try:
        apply_transaction(working, tx)
    except InvalidTransaction as err:
        return err.reason
    return None


def test_the_recorded_settlement_applies(paid: PaidRun) -> None:
    assert _settle(paid) is None


def test_a_price_that_is_not_the_rules_for_the_load_is_refused(paid: PaidRun) -> None:
    def cheaper(payload: dict[str, Any]) -> None:
        payload["price"] -= 1
        for charge in payload["charges"]:
            charge["amount"] = charge["tokens"] * payload["price"]
    assert "not the rule's" in str(_settle(paid, cheaper))

    def busier(payload: dict[str, Any]) -> None:
        payload["active"] = 4 if payload["active"] != 4 else 1
    assert "not the rule's" in str(_settle(paid, busier))


def test_credits_that_do_not_add_up_or_do_not_follow_the_split_are_refused(paid: PaidRun) -> None:
    def skimmed(payload: dict[str, Any]) -> None:
        payload["validator"] += 1
    assert "add up" in str(_settle(paid, skimmed))

    def shifted(payload: dict[str, Any]) -> None:
        payload["validator"] -= 1
        payload["credits"][0]["amount"] += 1
    assert "split" in str(_settle(paid, shifted))

    def overcharged(payload: dict[str, Any]) -> None:
        payload["charges"][0]["amount"] += 1
    assert "tokens x" in str(_settle(paid, overcharged))


def test_a_settlement_that_would_overdraw_a_payer_is_refused(paid: PaidRun) -> None:
    height, _, settlement = _settled(paid)[0]
    poorer = copy.deepcopy(paid.states[height - 1])
    payer = settlement["charges"][0]["payer"]
    poorer.payments[payer] = PaymentAccount(deposited=settlement["charges"][0]["amount"] - 1)
    assert "overdraw" in str(_settle(paid, before=poorer))


def test_a_settlement_without_its_chunk_in_the_block_or_twice_is_refused(paid: PaidRun) -> None:
    def later(payload: dict[str, Any]) -> None:
        payload["chunk"] += 1
    assert "no unsettled generation_chunk" in str(_settle(paid, later))


def test_a_session_without_payments_refuses_settlements(tmp_path: Path) -> None:
    s = session(model(), edges=3, chunk_steps=4)
    genesis = s.node.view()
    assert not genesis.payments and "payments" not in genesis.summary()
    working = begin_block(genesis)
    tx = sign_transaction(s.validator, "deposit", {"account": "alice", "amount": 5},
                          working.next_nonce(s.validator.address))
    with pytest.raises(InvalidTransaction, match="takes no payments"):
        apply_transaction(working, tx)


def test_a_validators_deposit_credits_an_account(paid: PaidRun) -> None:
    working = begin_block(paid.states[-1])
    validator = paid.session.validator
    before = working.payments["bob"].balance
    apply_transaction(working, sign_transaction(validator, "deposit", {"account": "bob", "amount": 7},
                                                working.next_nonce(validator.address)))
    assert working.payments["bob"].balance == before + 7


# ---------------------------------------------------------------- admission


def test_a_payer_that_cannot_cover_its_requests_at_the_cap_price_is_refused(paid: PaidRun) -> None:
    state = paid.states[-1]
    cap = TERMS.pricing.cap
    assert payment_refusal(state, "carol", 1, []) is not None  # holds 5, one token may cost 300
    assert payment_refusal(state, "nobody", 1, []) is not None
    held = state.payments["bob"].balance
    tokens = held // cap
    assert payment_refusal(state, "bob", tokens, []) is None
    assert payment_refusal(state, "bob", tokens + 1, []) is not None
    assert payment_refusal(state, "bob", tokens, [1]) is not None  # a request under way reserves its part


# ---------------------------------------------------------------- the audit


def test_the_audit_finds_every_settlement_backed_by_its_chunks_records(paid: PaidRun) -> None:
    chunks, check = audit_generation(paid.states[-1], paid.blocks, paid.session.store)
    assert chunks == len(_settled(paid)) and check.misbilled == [] and check.wrong == []


def test_a_settlement_the_records_do_not_back_is_named_by_the_audit(paid: PaidRun) -> None:
    _, chunk, settlement = _settled(paid)[0]
    records = decode_records(paid.session.store.get(chunk["records"]))
    busier = {**settlement, "active": settlement["active"] + 1}
    assert "load" in str(settlement_mismatch(records, chunk, busier))
    shifted = copy.deepcopy(settlement)  # the same money, but one call credited to another edge
    shifted["credits"][0]["calls"] += 1
    shifted["credits"][1]["calls"] -= 1
    assert "calls the records do not show" in str(settlement_mismatch(records, chunk, shifted))


def test_paid_decoding_reserves_each_requests_worst_case_until_it_is_released() -> None:
    cap, tokens = 300, 6
    terms = PaymentTerms(Pricing(base=100, floor=40, cap=cap), {"dana": 2 * tokens * cap})
    decoding = PaidDecoding(session(model(), payments=terms, max_batch=4))
    params = SamplingParams(max_tokens=tokens, seed=0)
    first, second = (decoding.submit([1, 2, 3], params, payer="dana") for _ in range(2))
    with pytest.raises(PaymentRequired, match="reserved"):
        decoding.submit([1, 2, 3], params, payer="dana")
    with pytest.raises(PaymentRequired, match="name the paying account"):
        decoding.submit([1, 2, 3], params)
    while decoding.busy:
        decoding.step()
    decoding.release(first)
    held = decoding.session.node.view().payments["dana"].balance
    assert tokens * cap <= held < 2 * tokens * cap  # both were charged, at most the cap price
    with pytest.raises(PaymentRequired, match="reserved"):  # the second, not released, still reserves its worst case
        decoding.submit([4, 5], params, payer="dana")
    decoding.release(second)
    third = decoding.submit([4, 5], params, payer="dana")
    while decoding.busy:
        decoding.step()
    assert decoding.result(third).tokens
