"""``bmoe serve --verified --payments``: the real app (in process, over Starlette's test client) charging each
request's ``user`` for its tokens; a request naming no payer, or a payer that cannot cover it, is a 402 and generates
nothing; the flag's file is checked before anything is served."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from bmoe.ledger.pricing import Pricing
from bmoe.run.generation import GenerationSession, GenerationSettings, open_session
from bmoe.run.payments import PaidDecoding, PaymentTerms
from bmoe.serve.app import build_app
from bmoe.serve.scheduler import Scheduler
from bmoe.serve.served_model import served_run
from tests.cli.in_process import bmoe_here

TERMS = PaymentTerms(Pricing(base=100, floor=50, cap=250), {"alice": 10**6, "poor": 10})


@pytest.fixture(scope="module")
def paid(tiny_run_dir: Path, tmp_path_factory: pytest.TempPathFactory
         ) -> Iterator[tuple[TestClient, GenerationSession]]:
    served = served_run(tiny_run_dir, "tiny")
    settings = GenerationSettings(edges=3, chunk_steps=4, max_batch=4, payments=TERMS)
    session = open_session(served.model, settings, None, served.tokenizer.decode,
                           tmp_path_factory.mktemp("paid-serve") / "ledger")
    scheduler = Scheduler(served.model, served.tokenizer.decode, engine=PaidDecoding(session))
    with TestClient(build_app(served, scheduler, charges=True)) as client:
        yield client, session


def test_a_request_is_charged_to_its_user_for_every_token_it_generated(paid: tuple[TestClient, GenerationSession]
                                                                        ) -> None:
    client, session = paid
    answer = client.post("/v1/completions", json={"model": "tiny", "prompt": "to be", "max_tokens": 6, "seed": 1,
                                                  "user": "alice"})
    assert answer.status_code == 200, answer.text
    tokens = answer.json()["usage"]["completion_tokens"]
    account = session.node.view().payments["alice"]
    assert tokens > 0 and TERMS.pricing.floor * tokens <= account.paid <= TERMS.pricing.cap * tokens


def test_no_payer_or_a_payer_that_cannot_pay_is_a_402_and_generates_nothing(paid: tuple[TestClient, GenerationSession]
                                                                             ) -> None:
    client, session = paid
    height = session.node.view().height
    nameless = client.post("/v1/completions", json={"model": "tiny", "prompt": "to be", "max_tokens": 4})
    assert nameless.status_code == 402 and nameless.json()["error"]["param"] == "user"
    poor = client.post("/v1/completions", json={"model": "tiny", "prompt": "to be", "max_tokens": 4, "user": "poor"})
    assert poor.status_code == 402 and "'poor' holds 10 units" in poor.json()["error"]["message"]
    stranger = client.post("/v1/chat/completions", json={"model": "tiny", "max_tokens": 4, "user": "nobody",
                                                         "messages": [{"role": "user", "content": "hi"}]})
    assert stranger.status_code == 402
    assert session.node.view().height == height  # nothing generated, nothing sealed
    assert session.node.view().payments["poor"].paid == 0


def test_a_payments_file_is_checked_before_anything_is_served(tiny_run_dir: Path, tmp_path: Path) -> None:
    serve = ["serve", "--model-dir", str(tiny_run_dir), "--port", "0"]
    good = tmp_path / "payments.json"
    good.write_text(json.dumps({"deposits": {"alice": 5}}))
    unverified = bmoe_here(*serve, "--payments", str(good))
    assert unverified.returncode == 2 and "--payments need --verified" in unverified.stderr
    for body, reason in (({"deposits": {"alice": -1}}, "deposits"),
                         ({"deposits": {}, "pricing": {"floor": 0}}, "floor"),
                         ({"deposits": {}, "pricing": {"price": 3}}, "unknown pricing field"),
                         ([], "must be an object")):
        bad = tmp_path / "bad.json"
        bad.write_text(json.dumps(body))
        refused = bmoe_here(*serve, "--verified", "--payments", str(bad))
        assert refused.returncode == 2 and reason in refused.stderr, refused.stderr
        assert "Traceback" not in refused.stderr and len(refused.stderr.strip().splitlines()) == 1
