"""`bmoe explorer DIR` on a verified server's ledger directory: a tiny model's verified generation of two prompts
(8 tokens each, 4 steps a chunk) with edge-4 zeroing expert 2 of layer 1 (``tests/generation/helpers.py``), and the
receipts.jsonl lines a server writes for the two responses (plus one whose chunk is not on the chain, and one that
is not a receipt).

The generations page shows each response's text, tokens, whether it is verified and its chunks, and every session
on the chain with the sums its chunks record; a chunk's page its calls, each token's experts per layer (top-K in every
layer) and the liar's records against (edge, layer, expert, token) as the chain records them, marked on the routes;
the liar's edge page counts its generation records; the chain's pages link to the chunks; a classifier's run shows
none of it. Pages are read from the real app over HTTP (Starlette's test client); one test (slow) runs the command
and follows the links in a real browser, from the liar's edge page to the chunk that caught it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By
from starlette.testclient import TestClient

from bmoe.explorer.app import make_app
from bmoe.explorer.lm_source import run_source
from bmoe.explorer.snapshot import Explorer
from bmoe.ledger.chainstore import ChainStore
from bmoe.ledger.transactions import tx_hash
from bmoe.lm.decoding.sampling import SamplingParams
from bmoe.serve.receipt import IN_PROCESS
from bmoe.storage import DirectoryStore
from tests.cli.in_process import bmoe_here as bmoe
from tests.explorer.browser import ExplorerProcess, follow, full_page_png, text_of
from tests.generation.helpers import liar, model, receipt, session
from tests.lm.explorer_pages import Node, parse
from tests.lm.tiny_lm import one_thread

DOCS_IMG = Path(__file__).resolve().parents[2] / "docs" / "img"
LIAR = (4, 1, 2)  # edge-4 zeroes expert 2 of layer 1
PROMPTS = [[1, 2, 3], [4, 5, 6, 7]]
PROMPT_TEXTS = ['say <b>hi</b> & "bye"', "one two three four"]
MAX_TOKENS = 8


def _line(s: Any, request: int) -> dict[str, Any]:
    """A receipts.jsonl line as ``bmoe serve --verified`` writes it (its receipt's parts a page reads)."""
    result = s.decoding.result(request)
    served = receipt(s, request)
    served["completion"] = {**served["completion"], "finish_reason": result.finish_reason}  # type: ignore[dict-item]
    return {"receipt": {**served, "id": f"cmpl-{request}", "verification": s.decoding.verification(request)},
            "prompt": PROMPT_TEXTS[request], "text": f"completion {request} <i>{len(result.tokens)}</i>"}


@pytest.fixture(scope="module")
def ledger_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("generation-explorer") / "ledger"
    edge, layer, expert = LIAR
    with one_thread():  # torch's threads only spin on a tiny model (and on a loaded machine)
        s = session(model(), {edge: liar(layer, expert)}, run_dir=directory)
        for index, prompt in enumerate(PROMPTS):
            s.decoding.submit(prompt, SamplingParams(max_tokens=MAX_TOKENS, temperature=0.8, seed=index))
        while s.decoding.busy:
            s.decoding.step()
    lines = [_line(s, request) for request in range(len(PROMPTS))]
    forged = json.loads(json.dumps(lines[0]))
    forged["receipt"]["id"] = "cmpl-forged"
    forged["receipt"]["ledger"]["chunks"][0]["tx"] = "0" * 64
    in_process = {"receipt": {"id": "cmpl-in-process", "verification": IN_PROCESS, "ledger": None}, "prompt": "p",
                  "text": "t"}
    with (directory / "receipts.jsonl").open("w", encoding="utf-8") as out:
        out.writelines(json.dumps(line) + "\n" for line in [*lines, forged, in_process])
        out.write("not a receipt\n")
    return directory


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    with one_thread():  # the explorer's audit re-computes every call
        yield


@pytest.fixture(scope="module")
def client(ledger_dir: Path) -> Iterator[TestClient]:
    with TestClient(make_app(Explorer(run_source(ledger_dir)), False)) as test_client:
        yield test_client


def page(client: TestClient, path: str) -> Node:
    answer = client.get(path)
    assert answer.status_code == 200, (path, answer.text[-400:])
    return parse(answer.text)


def chunks_on_chain(directory: Path) -> list[tuple[int, str, dict[str, Any]]]:
    """(height, tx hash, payload) of every generation_chunk transaction, read from the chain file itself."""
    with ChainStore(directory / "chain.sqlite", readonly=True) as chain:
        return [(block.header.height, tx_hash(tx), tx.payload) for block in chain.iter_blocks()
                for tx in block.transactions if tx.kind == "generation_chunk"]


def receipts(directory: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (directory / "receipts.jsonl").read_text().splitlines()[:len(PROMPTS)]]


def edge_address(directory: Path, edge: int) -> str:
    with ChainStore(directory / "chain.sqlite", readonly=True) as chain:
        return str(next(iter(chain.iter_blocks())).transactions[0].payload["edges"][edge])


def test_the_generations_page_shows_each_responses_text_tokens_verification_and_chunks(
        client: TestClient, ledger_dir: Path) -> None:
    generations = page(client, "/generations")
    rows = generations.by_id("responses").rows()
    assert rows[0][:6] == ["id", "prompt", "completion", "tokens (prompt + completion)", "finish", "verified"]
    served = receipts(ledger_dir)
    assert [row[0] for row in rows[1:]] == [line["receipt"]["id"] for line in served] + ["cmpl-forged",
                                                                                        "cmpl-in-process"]
    for row, line in zip(rows[1:], served, strict=False):
        named = line["receipt"]["ledger"]["chunks"]
        assert row[1:3] == [line["prompt"], line["text"]]  # escaped markup comes back as the text it was
        assert row[3] == f"{line['receipt']['prompt']['tokens']} + {line['receipt']['completion']['tokens']}"
        assert row[4] == line["receipt"]["completion"]["finish_reason"] == "length"
        assert row[5] == f"verified ({len(named)} chunks on the chain)"
        assert row[6] == ", ".join(f"gen-0/{c['chunk']}" for c in named)
    assert rows[-2][5] == "not on the chain: chunk 0"
    assert rows[-1][1:] == ["p", "t", "–", "–", "not verified (in process)", "–", "none"]
    assert generations.by_id("unreadable").rows()[1][0] == str(len(PROMPTS) + 3)
    links = [a.attrs["href"] for a in generations.by_id("responses").all("a")]
    assert "/chunk/gen-0/0" in links and all(href.startswith(("/chunk/", "/edge/")) for href in links)


def test_the_responses_show_the_records_against_edges_in_their_chunks(client: TestClient, ledger_dir: Path) -> None:
    against = {payload["chunk"]: payload["records_against"] for _, _, payload in chunks_on_chain(ledger_dir)}
    assert any(against.values())  # the liar was caught
    rows = page(client, "/generations").by_id("responses").rows()[1:len(PROMPTS) + 1]
    edge, layer, expert = LIAR
    for row, line in zip(rows, receipts(ledger_dir), strict=True):
        named = [against[c["chunk"]] for c in line["receipt"]["ledger"]["chunks"]]
        shown = row[7].split("; ") if row[7] != "none" else []
        assert len(shown) == sum(len(records) for records in named)
        record = f"edge-{edge} dissent at layer {layer}, expert {expert}, tokens ("
        assert all(text.startswith(record) for text in shown)


def test_the_sessions_table_sums_what_the_chain_records(client: TestClient, ledger_dir: Path) -> None:
    payloads = [payload for _, _, payload in chunks_on_chain(ledger_dir)]
    rows = page(client, "/generations").by_id("sessions").rows()
    assert rows[1] == ["gen-0", ", ".join(f"gen-0/{p['chunk']}" for p in payloads),
                       *(str(sum(p[name] for p in payloads)) for name in ("tokens", "calls", "checked")),
                       str(sum(len(p["disputes"]) for p in payloads)),
                       str(sum(len(p["records_against"]) for p in payloads))]
    assert page(client, "/").by_id("head").pairs()["generations"] == (
        f"1 sessions, {len(payloads)} chunks sealed, {sum(p['tokens'] for p in payloads)} tokens")


def test_a_chunk_page_pins_the_liar_to_edge_layer_expert_and_token(client: TestClient, ledger_dir: Path) -> None:
    edge, layer, expert = LIAR
    liar_address = edge_address(ledger_dir, edge)
    slot = model().config.slot(layer, expert)
    caught = [(height, tx, payload) for height, tx, payload in chunks_on_chain(ledger_dir)
              if payload["records_against"]]
    assert caught
    for height, tx, payload in caught:
        chunk = page(client, f"/chunk/gen-0/{payload['chunk']}")
        facts = chunk.by_id("chunk-facts").pairs()
        assert (facts["block"], facts["transaction"], facts["calls checked"], facts["verification seed"]) == (
            f"#{height}", tx, str(payload["checked"]), str(payload["seed"]))
        records = chunk.by_id("records").rows()[1:]
        expected = [[f"edge-{edge}", str(r["slot"]), str(layer), str(expert), r["reason"],
                     ", ".join(f"({s}, {p})" for s, p in r["rows"])] for r in payload["records_against"]]
        assert [row[:6] for row in records] == expected
        assert all(r["edge"] == liar_address and r["slot"] == slot for r in payload["records_against"])
        evidence = [a for a in chunk.by_id("records").all("a") if a.attrs["href"].startswith("/object/")]
        assert len(evidence) == 2 * len(records)  # the accepted and the committed outputs, on the chain
        calls = {row[0]: row for row in chunk.by_id("calls").rows()[1:]}
        assert calls[str(slot)][7:9] == ["disputed", "replaced: rolled back"] or (
            calls[str(slot)][7:9] == ["disputed", "accepted"] and calls[str(slot)][4] != f"edge-{edge}")
        marked = _marked(chunk.by_id("routes"))
        named = {(s, p) for r in payload["records_against"] for s, p in r["rows"]}
        assert {(s, p) for s, p, at, e in marked if (at, e) == (layer, expert)} == named
        assert page(client, f"/object/{evidence[0].attrs['href'].removeprefix('/object/')}").by_id("cid")


def _marked(routes: Node) -> list[tuple[int, int, int, int]]:
    """(sequence, position, layer, expert) of each expert marked as recorded against on the routes table."""
    marked = []
    for tr in routes.all("tr")[1:]:
        cells = [node for node in tr.children if isinstance(node, Node)]
        sequence, position = int(cells[0].text()), int(cells[1].text())
        marked += [(sequence, position, layer, int(span.text())) for layer, cell in enumerate(cells[2:])
                   for span in cell.all("span") if span.attrs.get("class") == "bad"]
    return marked


def test_every_token_of_a_chunk_is_routed_to_top_k_experts_of_every_layer(client: TestClient,
                                                                          ledger_dir: Path) -> None:
    config = model().config
    store = DirectoryStore(ledger_dir / "store", create=False)
    for _, _, payload in chunks_on_chain(ledger_dir):
        rows = page(client, f"/chunk/gen-0/{payload['chunk']}").by_id("routes").rows()
        assert rows[0] == ["sequence", "position", *(f"layer {n}" for n in range(config.num_hidden_layers))]
        assert len(rows) > 1 and store.has(payload["records"])
        for row in rows[1:]:
            for cell in row[2:]:
                experts = [int(e) for e in cell.split(", ")]
                assert len(experts) == config.num_experts_per_tok == len(set(experts))
                assert all(0 <= e < config.num_local_experts for e in experts)
        calls = page(client, f"/chunk/gen-0/{payload['chunk']}").by_id("calls").rows()[1:]
        assert len(calls) == payload["calls"] and sum(int(row[3]) for row in calls) == payload["rows"]


def test_the_liars_edge_page_counts_its_generation_records(client: TestClient, ledger_dir: Path) -> None:
    edge, layer, expert = LIAR
    records = [(payload["chunk"], r) for _, _, payload in chunks_on_chain(ledger_dir)
               for r in payload["records_against"]]
    rows = page(client, f"/edge/edge-{edge}").by_id("generation-records").rows()[1:]
    assert [row[0] for row in rows] == [f"gen-0/{chunk}" for chunk, _ in records]
    assert all(row[2:4] == [f"layer {layer}, expert {expert}", "dissent"] for row in rows)
    honest = page(client, "/edge/edge-0")
    assert "Generation records (0)" in honest.text()
    with pytest.raises(KeyError):
        honest.by_id("generation-records")


def test_blocks_link_their_chunk_and_unknown_chunks_are_404(client: TestClient, ledger_dir: Path) -> None:
    height, _, payload = chunks_on_chain(ledger_dir)[0]
    block = page(client, f"/block/{height}")
    assert f"/chunk/gen-0/{payload['chunk']}" in [a.attrs["href"] for a in block.by_id("transactions").all("a")]
    assert "Generations" in [a.text() for a in page(client, "/").all("a")]
    for path in ("/chunk/gen-0/99", "/chunk/gen-9/0", "/chunk/gen-0/x"):
        assert client.get(path).status_code == 404, path


def test_the_search_box_finds_a_response_and_a_session(client: TestClient, ledger_dir: Path) -> None:
    response = receipts(ledger_dir)[1]["receipt"]["id"]
    found = client.get("/search", params={"q": response}, follow_redirects=False)
    assert (found.status_code, found.headers["location"]) == (303, f"/generations#response-{response}")
    assert parse(client.get(found.headers["location"]).text).by_id(f"response-{response}").text() == response
    session_found = client.get("/search", params={"q": "gen-0"}, follow_redirects=False)
    assert session_found.headers["location"] == "/generations#sessions"
    assert client.get("/search", params={"q": "cmpl-nobody"}).status_code == 404


def test_a_classifier_runs_explorer_shows_no_generation(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    result = bmoe("train", "--run-dir", run_dir, "--dataset", "synthetic", "--experts", "4", "--top-k", "2",
                  "--edges", "5", "--batch-size", "32", "--difficulty", "0", "--rounds", "1", "--limit-train", "64",
                  "--limit-test", "32", "--eval-every", "100")
    assert result.returncode == 0, result.stderr
    with TestClient(make_app(Explorer(run_source(run_dir)), False)) as run:
        home = page(run, "/")
        assert "Generations" not in [a.text() for a in home.all("a")]
        assert "generations" not in home.by_id("head").pairs()
        assert run.get("/generations").status_code == 404
        assert "Generation records" not in page(run, "/edge/edge-0").text()
        assert page(run, "/edges").by_id("edges").rows()[0][0] == "edge"


def test_the_command_serves_the_liars_chunk_to_a_browser(browser: webdriver.Chrome, ledger_dir: Path) -> None:
    edge, layer, expert = LIAR
    server = ExplorerProcess(ledger_dir)
    try:
        assert "audit OK" in server.first_line
        browser.get(server.url + "/generations")
        assert browser.find_element(By.TAG_NAME, "h1").text == "Generations"
        assert PROMPT_TEXTS[0] in text_of(browser, "responses")
        browser.get(f"{server.url}/edge/edge-{edge}")
        follow(browser, "#generation-records a[href^='/chunk/']")
        assert browser.find_element(By.TAG_NAME, "h1").text.startswith("Chunk ")
        records = text_of(browser, "records")
        assert f"edge-{edge} {model().config.slot(layer, expert)} {layer} {expert} dissent" in records
        assert browser.find_element(By.ID, "routes").find_elements(By.CSS_SELECTOR, "span.bad")
        full_page_png(browser, DOCS_IMG / "explorer-generation-chunk.png")
    finally:
        server.stop()
