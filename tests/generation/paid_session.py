"""A paid verified generation in a ledger directory, for the pages and commands that show its bill: the helpers' tiny
model and prompts, edge-4 zeroing expert 2 of layer 1, alice paying for two prompts and bob for one."""

from __future__ import annotations

from pathlib import Path

from bmoe.ledger.pricing import Pricing
from bmoe.run.generation import GenerationSession
from bmoe.run.payments import PaymentTerms
from tests.generation.helpers import PARAMS, PROMPTS, liar, model, session
from tests.lm.tiny_lm import one_thread

PAYERS = ["alice", "bob", "alice"]
TERMS = PaymentTerms(Pricing(base=100, floor=40, cap=300), {"alice": 10**6, "bob": 10**6, "carol": 5})


def paid_session(directory: Path | None = None) -> GenerationSession:
    """The session, every prompt generated to its end (its chain and store in ``directory`` when given)."""
    with one_thread():
        s = session(model(), {4: liar(1, 2)}, run_dir=directory, payments=TERMS, max_batch=4)
        for prompt, params, payer in zip(PROMPTS, PARAMS, PAYERS, strict=True):
            s.decoding.submit(prompt, params, payer=payer)
        while s.decoding.busy:
            s.decoding.step()
    return s
