"""`bmoe explorer` and `bmoe records` on a paid verified generation's ledger directory: the generations page shows
every participant's bill and each chunk's settlement, read from the real app over HTTP; `bmoe records` prints the
same bill, as a table and as JSON."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from bmoe.explorer.app import make_app
from bmoe.explorer.lm_source import run_source
from bmoe.explorer.snapshot import Explorer
from bmoe.ledger.chainstore import ChainStore
from bmoe.run.generation import GenerationSession
from bmoe.run.payments import bill
from tests.cli.in_process import bmoe_here as bmoe
from tests.generation.paid_session import paid_session
from tests.lm.explorer_pages import parse
from tests.lm.tiny_lm import one_thread


@pytest.fixture(scope="module")
def paid(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, GenerationSession]:
    directory = tmp_path_factory.mktemp("paid-explorer") / "ledger"
    return directory, paid_session(directory)


@pytest.fixture(scope="module")
def client(paid: tuple[Path, GenerationSession]) -> Iterator[TestClient]:
    with one_thread(), TestClient(make_app(Explorer(run_source(paid[0])), False)) as test_client:
        yield test_client


def test_the_generations_page_shows_what_each_participant_paid_and_earned(
        client: TestClient, paid: tuple[Path, GenerationSession]) -> None:
    with one_thread():
        answer = client.get("/generations")
    assert answer.status_code == 200
    page = parse(answer.text)
    rows = page.by_id("payments").rows()
    assert rows[0] == ["account", "role", "deposited", "paid", "earned", "balance"]
    expected = bill(paid[1].node.view())
    assert [row[1:] for row in rows[1:]] == [[r["role"], *(str(r[c]) for c in ("deposited", "paid", "earned",
                                                                               "balance"))] for r in expected]
    assert {"alice", "bob", "carol", "validator-0", "edge-0"} <= {row[0] for row in rows[1:]}


def test_the_generations_page_lists_every_settlement_with_its_load_and_price(
        client: TestClient, paid: tuple[Path, GenerationSession]) -> None:
    with one_thread():
        rows = parse(client.get("/generations").text).by_id("settlements").rows()
    with ChainStore(paid[0] / "chain.sqlite", readonly=True) as chain:
        settled = [tx.payload for block in chain.iter_blocks() for tx in block.transactions if tx.kind == "settlement"]
    assert len(rows) - 1 == len(settled) > 0
    for row, payload in zip(rows[1:], settled, strict=True):
        assert row[0] == f"gen-0/{payload['chunk']}"
        assert row[2].startswith(f"{payload['active']} of 4 (")
        assert row[3] == str(payload["price"])


def test_bmoe_records_prints_the_bill_as_a_table_and_as_json(paid: tuple[Path, GenerationSession]) -> None:
    directory, s = paid
    printed = bmoe("records", directory)
    assert printed.returncode == 0, printed.stderr
    assert "payments at height" in printed.stdout
    expected = bill(s.node.view())
    for row in expected:
        if row["role"] == "requester":
            assert row["account"] in printed.stdout
    assert "edge-4" in printed.stdout and "validator-0" in printed.stdout
    as_json = bmoe("records", directory, "--json")
    assert json.loads(as_json.stdout)["payments"] == expected
