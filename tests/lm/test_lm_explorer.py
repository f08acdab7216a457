"""`bmoe explorer RUN_DIR` on a language model's run directory (``lm.json``, no ``config.json``): a tiny model, 3
rounds through B-MoE with 2 of 5 edges adding noise half the time, validated after every round.

The run page shows the model's manifest as the trusted object on the chain says it, the training loss the ledger
recorded and the validation loss in nats and bits per token; the layers page each layer's routing as the forward
tasks' activations on the chain record it; the experts page every (layer, expert) slot with its current CID; every
page of a classifier's run loads; settings of another run fail the audit; a garbled ``lm.json`` is one line and
exit 2. The pages are read from the real app over HTTP (Starlette's test client); one test starts the command.
"""

from __future__ import annotations

import json
import math
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from selenium.webdriver.common.by import By
from starlette.testclient import TestClient

from bmoe.cli import main
from bmoe.explorer.app import make_app
from bmoe.explorer.lm_source import LMRunSource, run_source
from bmoe.explorer.snapshot import Explorer
from bmoe.ledger.chainstore import ChainStore
from bmoe.ledger.state import LedgerState, apply_block
from bmoe.ledger.transactions import Transaction
from bmoe.protocol.lm.trusted import decode_trusted
from bmoe.run.lm.config import LMRunConfig
from bmoe.run.lm.session import LMSession
from bmoe.storage import DirectoryStore, cid_of
from tests.cli.helpers import SMALL
from tests.cli.in_process import bmoe_here as bmoe
from tests.explorer.browser import MISSING, ExplorerProcess, chromium, full_page_png
from tests.lm.explorer_pages import Node, parse
from tests.lm.lm_runs import CHARS, IDS, TINY_LM

DOCS_IMG = Path(__file__).resolve().parents[2] / "docs" / "img"
ROUNDS = 3
ATTACKED = {"malicious_ratio": 0.4, "attack": "gaussian", "attack_params": {"probability": 0.5}}


def _write_run(run_dir: Path, **run: Any) -> None:
    config = LMRunConfig.build({**TINY_LM, "steps": ROUNDS, "validation_every": 1},
                               {"num_edges": 5, "difficulty": 0, "seed": 7, **ATTACKED, **run})
    cut = int(IDS.numel() * 0.9)
    session = LMSession(config, "".join(CHARS).encode(), len(CHARS), IDS[:cut], IDS[cut:], run_dir)
    session.train()
    session.close()


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("lm-explorer") / "lm-run"
    _write_run(directory)
    return directory


@pytest.fixture(scope="module")
def client(run_dir: Path) -> Iterator[TestClient]:
    source = run_source(run_dir)
    assert isinstance(source, LMRunSource)
    with TestClient(make_app(Explorer(source), False)) as test_client:
        yield test_client


def page(client: TestClient, path: str) -> Node:
    answer = client.get(path)
    assert answer.status_code == 200, (path, answer.text[-400:])
    return parse(answer.text)


def transactions(run_dir: Path, kind: str) -> list[Transaction]:
    with ChainStore(run_dir / "chain.sqlite", readonly=True) as chain:
        return [tx for block in chain.iter_blocks() for tx in block.transactions if tx.kind == kind]


def chain_payloads(run_dir: Path, kind: str) -> list[dict[str, Any]]:
    return [tx.payload for tx in transactions(run_dir, kind)]


def head_state(run_dir: Path) -> LedgerState:
    """The ledger's state at the head, replayed from the chain file (the explorer is not asked)."""
    state = LedgerState()
    with ChainStore(run_dir / "chain.sqlite", readonly=True) as chain:
        for block in chain.iter_blocks():
            state = apply_block(state, block)
    return state


def assert_points(shown: list[tuple[float, float]], expected: list[tuple[float, float]]) -> None:
    """A plot's points as its tooltips give them (four significant digits)."""
    assert [x for x, _ in shown] == [x for x, _ in expected]
    assert [y for _, y in shown] == pytest.approx([y for _, y in expected], rel=1e-3)


def test_the_run_page_shows_the_models_manifest_as_the_trusted_object_on_the_chain_says_it(
        client: TestClient, run_dir: Path) -> None:
    gate = head_state(run_dir).gate_cid
    _, config, tokenizer_cid = decode_trusted(DirectoryStore(run_dir / "store", create=False).get(gate))
    manifest = page(client, "/run").by_id("manifest")
    shown = manifest.pairs()
    expected = {"layers L": config.num_hidden_layers, "hidden size d": config.hidden_size,
                "experts per layer N": config.num_local_experts, "top-K": config.num_experts_per_tok,
                "context (tokens)": config.max_position_embeddings, "vocabulary": config.vocab_size}
    assert {name: shown[name] for name in expected} == {name: str(value) for name, value in expected.items()}
    assert (config.num_hidden_layers, config.hidden_size, config.vocab_size) == (2, 32, len(CHARS))
    assert shown["attention"].startswith(f"{config.num_attention_heads} heads, {config.num_key_value_heads} key-value")
    assert shown["tokenizer CID"] == tokenizer_cid == cid_of("".join(CHARS).encode())
    assert manifest.all("a")[0].attrs["title"] == gate  # the trusted part the head names
    lm_settings = page(client, "/run").by_id("lm-settings").pairs()
    assert lm_settings["layers"] == "2" and lm_settings["lm_experts"] == "4"
    protocol = page(client, "/run").by_id("genesis").pairs()
    assert protocol["framework"] == "bmoe" and protocol["edges M"] == "5" and protocol["comparison"] == "exact"


def test_the_curves_show_the_ledgers_training_loss_and_the_validation_loss_in_nats_and_bits(
        client: TestClient, run_dir: Path) -> None:
    ledger = {update["task_id"].split("-")[1]: update["loss"] for update in chain_payloads(run_dir, "gate_update")}
    history = json.loads((run_dir / "history.json").read_text())
    run = page(client, "/run")
    curves = run.by_id("loss-curve").points()
    assert len(ledger) == ROUNDS
    assert_points(curves["training"], sorted((float(r), loss) for r, loss in ledger.items()))
    validation = [(float(point["step"]), point["loss"]) for point in history["validation"]]
    assert len(validation) == ROUNDS
    assert_points(curves["validation"], validation)
    assert_points(run.by_id("bits-curve").points()["validation"], [(x, loss / math.log(2)) for x, loss in validation])
    rounds = run.by_id("rounds").rows()[1:]
    assert [row[0] for row in rounds] == [str(r) for r in range(ROUNDS)]
    assert [row[5] for row in rounds] == [str(r["misbehaviour"]) for r in history["rounds"]]


def test_the_layers_page_shows_each_layers_routing_as_the_forward_tasks_record_it(client: TestClient,
                                                                                   run_dir: Path) -> None:
    experts = TINY_LM["lm_experts"]
    layers = page(client, "/layers")
    for layer in range(TINY_LM["layers"]):
        recorded = [(a["task_id"], a["counts"][layer * experts:(layer + 1) * experts])
                    for a in chain_payloads(run_dir, "activation") if a["task_id"].endswith(f"-f{layer}")]
        assert len(recorded) == ROUNDS
        rows = layers.by_id(f"routing-{layer}").rows()
        assert rows[0][3:] == [f"expert {j}" for j in range(experts)]
        shown = [(row[1], [int(cell) for cell in row[3:]]) for row in rows[1:-1]]
        assert shown == recorded
        assert [int(cell) for cell in rows[-1][3:]] == [sum(c[j] for _, c in recorded) for j in range(experts)]
        tokens = int(rows[-1][2])
        assert sum(int(cell) for cell in rows[-1][3:]) == tokens * TINY_LM["lm_top_k"]  # K experts per token
    links = [a.attrs["href"] for a in layers.by_id("routing-1").all("a") if a.attrs["href"].startswith("/expert/")]
    assert links == [f"/expert/{experts + j}" for j in range(experts)]


def test_the_experts_page_lists_every_layer_and_expert_with_its_current_cid(client: TestClient,
                                                                           run_dir: Path) -> None:
    expert_cids = head_state(run_dir).expert_cids
    experts = TINY_LM["lm_experts"]
    table = page(client, "/experts").by_id("experts")
    rows = table.rows()[1:]
    assert [row[0] for row in rows] == [f"{slot} (layer {slot // experts}, expert {slot % experts})"
                                        for slot in range(len(expert_cids))]
    shown = [a.attrs["title"] for a in table.all("a") if a.attrs["href"].startswith("/object/")]
    assert shown == expert_cids
    assert all(row[5] == f"{ROUNDS} of {ROUNDS}" for row in rows)  # every round stepped every expert
    grid = page(client, "/experts").by_id("experts-grid").rows()
    assert [row[0] for row in grid[1:]] == [f"layer {layer}" for layer in range(TINY_LM["layers"])]
    forward = {task["task_id"]: task["samples"] for task in chain_payloads(run_dir, "task")}
    for layer, row in enumerate(grid[1:]):
        shares = [[a["counts"][layer * experts + j] / forward[a["task_id"]] for j in range(experts)]
                  for a in chain_payloads(run_dir, "activation") if a["task_id"].endswith(f"-f{layer}")]
        assert row[1:] == [f"{sum(s[j] for s in shares) / len(shares):.3f}" for j in range(experts)]
    one = page(client, f"/expert/{experts + 1}")
    assert one.all("h1")[0].text() == f"Expert {experts + 1} (layer 1, expert 1)"
    committed: dict[str, int] = {}
    for tx in transactions(run_dir, "commitment") + transactions(run_dir, "expert_update"):
        entries = tx.payload["results" if tx.kind == "commitment" else "updates"]
        committed[tx.sender] = committed.get(tx.sender, 0) + sum(entry["expert"] == experts + 1 for entry in entries)
    edges = chain_payloads(run_dir, "genesis")[0]["edges"]
    answers = {row[0]: int(row[1]) for row in one.by_id("expert-edges").rows()[1:]}
    assert answers == {f"edge-{edges.index(edge)}": n for edge, n in committed.items() if n}


@pytest.mark.parametrize("path", ["/", "/blocks", "/block/2", "/tasks", "/task/train-000001-f0",
                                  "/task/train-000001-b0", "/edges", "/edge/edge-3", "/experts", "/expert/0",
                                  "/run", "/layers"])
def test_every_page_loads_on_a_language_models_run(client: TestClient, path: str) -> None:
    page(client, path)


def test_search_and_objects_work_on_a_language_models_run(client: TestClient, run_dir: Path) -> None:
    assert "Layers" in [a.text() for a in page(client, "/").all("header")[0].all("a")]
    found = client.get("/search", params={"q": "train-000002-b1"}, follow_redirects=False)
    assert found.status_code == 303 and found.headers["location"] == "/task/train-000002-b1"
    gate = head_state(run_dir).gate_cid
    assert client.get(f"/object/{gate}/bytes").content == DirectoryStore(run_dir / "store", create=False).get(gate)
    assert "2 layers × 4 experts, top-2" in page(client, "/").by_id("head").text()


def test_settings_of_another_run_fail_the_audit(run_dir: Path, tmp_path: Path) -> None:
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    settings = json.loads((copy / "lm.json").read_text())
    settings["run"]["seed"] = 8
    (copy / "lm.json").write_text(json.dumps(settings))
    with TestClient(make_app(Explorer(run_source(copy)), False)) as other:
        answer = other.get("/run")
    assert answer.status_code == 422
    assert "config_hash differs from" in parse(answer.text).by_id("finding").text()


def test_a_classifiers_run_keeps_its_pages_and_has_no_layers(tmp_path: Path) -> None:
    result = bmoe("train", "--run-dir", tmp_path / "run", *SMALL, "--rounds", "1")
    assert result.returncode == 0, result.stderr
    source = run_source(tmp_path / "run")
    assert not isinstance(source, LMRunSource)
    with TestClient(make_app(Explorer(source), False)) as classifier:
        layers = classifier.get("/layers")
        assert layers.status_code == 404
        assert "not a language model's run" in parse(layers.text).by_id("not-found").text()
        run = page(classifier, "/run")
        assert run.by_id("config") and run.by_id("genesis").pairs()["experts N"] == "4"
        assert "Layers" not in [a.text() for a in run.all("header")[0].all("a")]
        experts = page(classifier, "/experts")
        assert [row[0] for row in experts.by_id("experts").rows()[1:]] == ["0", "1", "2", "3"]
        with pytest.raises(KeyError):
            experts.by_id("experts-grid")
        assert "configured in config.json" in page(classifier, "/edges").text()


@pytest.mark.parametrize(("lm_json", "needle"), [
    ("{not json", "lm.json: not a language model's settings (JSONDecodeError"),
    ('{"lm": {}}', "holds exactly the tables 'lm' and 'run'"),
    ('{"lm": {"layers": "two"}, "run": {}}', "lm.json: not a language model's settings: layers"),
    ('{"lm": {"colour": 1}, "run": {}}', "unknown language-model setting(s): colour"),
    ('[1, 2]', "holds exactly the tables 'lm' and 'run'"),
])
def test_a_garbled_lm_json_is_one_line_and_exit_2(lm_json: str, needle: str, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "chain.sqlite").write_bytes(b"")
    (tmp_path / "lm.json").write_text(lm_json)
    monkeypatch.setattr(sys, "argv", ["bmoe", "explorer", str(tmp_path), "--port", "0"])
    with pytest.raises(SystemExit) as exit_info:
        main()
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert exit_info.value.code == 2 and len(lines) == 1 and needle in lines[0], lines


def test_the_command_serves_a_language_models_run(run_dir: Path) -> None:
    server = ExplorerProcess(run_dir)
    try:
        assert "audit OK" in server.first_line
        for path, needle in (("/run", "tokenizer CID"), ("/layers", "Routing by layer")):
            answer = httpx.get(server.url + path)
            assert answer.status_code == 200 and needle in answer.text, path
    finally:
        server.stop()


def test_the_language_models_pages_load_in_a_browser_without_javascript(run_dir: Path) -> None:
    if MISSING is not None:
        pytest.skip(MISSING)
    server, driver = ExplorerProcess(run_dir), chromium()
    try:
        for path, title in (("/run", "Run (language model)"), ("/layers", "Routing by layer")):
            driver.get(server.url + path)
            assert driver.find_element(By.TAG_NAME, "h1").text == title
        assert len(driver.find_element(By.ID, "routing-chart-0").find_elements(By.TAG_NAME, "rect")) == 4
        full_page_png(driver, DOCS_IMG / "explorer-lm-layers.png")
        driver.get(server.url + "/run")
        assert driver.find_element(By.ID, "loss-curve").find_elements(By.TAG_NAME, "circle")
    finally:
        driver.quit()
        server.stop()
