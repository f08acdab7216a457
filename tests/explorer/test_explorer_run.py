"""`bmoe explorer RUN_DIR` in a real browser, on a real run: digits, 6 rounds, 3 of 5 edges attacking without
colluding, so some experts' results are accepted over dissenters and others rejected (no quorum, where
nobody is accused).

The pages load without JavaScript; the search box finds a block by its hash and a task by its id; an
expert's decision shows each dissenter's evidence as the chain records it, linked to the committed
bytes, which download verified, and a rejected expert's decision its groups and no dissent; unknown
names are 404 pages; a tampered copy of the run is served as the audit's finding; a directory that is
not a run or a cluster, and a port in use, are one line and exit 2.
"""

from __future__ import annotations

import shutil
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By

from bmoe.cli import main
from bmoe.ledger.chainstore import ChainStore
from bmoe.storage import DirectoryStore, cid_of
from tests.cli.helpers import assert_user_error
from tests.cli.in_process import bmoe_here as bmoe
from tests.explorer.browser import ExplorerProcess, full_page_png, text_of

DOCS_IMG = Path(__file__).resolve().parents[2] / "docs" / "img"
RUN = ["--dataset", "digits", "--rounds", "6", "--limit-train", "300", "--limit-test", "100", "--experts", "4",
       "--top-k", "2", "--edges", "5", "--malicious-ratio", "0.6", "--no-collude", "--attack-param",
       "probability=0.6", "--eval-every", "2", "--stake", "100", "--slash", "10", "--difficulty", "4", "--seed", "1"]
PAGES = {"/": "Chain", "/blocks": "Blocks", "/tasks": "Tasks", "/edges": "Edges", "/experts": "Experts",
         "/run": "Run", "/expert/1": "Expert 1", "/edge/edge-4": "Edge edge-4", "/block/0": "Block 0"}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("explorer") / "digits-attacked"
    result = bmoe("train", "--run-dir", directory, *RUN)
    assert result.returncode == 0, result.stderr
    return directory


@pytest.fixture(scope="module")
def explorer(run_dir: Path) -> Iterator[ExplorerProcess]:
    server = ExplorerProcess(run_dir)
    try:
        yield server
    finally:
        server.stop()


def decided(run_dir: Path, status: str) -> tuple[str, int, list[str | None]]:
    """From the chain itself: a task, the first expert of its result decisions with ``status`` (accepted: one
    with records), and the evidence of every misbehaviour record against it (both phases)."""
    with ChainStore(run_dir / "chain.sqlite", readonly=True) as chain:
        for block in chain.iter_blocks():
            for tx in block.transactions:
                if tx.kind != "acceptance":
                    continue
                for expert in [d["expert"] for d in tx.payload["decisions"] if d["status"] == status]:
                    evidence = [r["evidence"] for t in block.transactions if t.kind == "misbehaviour"
                                for r in t.payload["records"] if r["expert"] == expert]
                    if evidence or status != "accepted":
                        return tx.payload["task_id"], expert, evidence
    raise AssertionError(f"the run has no {status} expert to show: the test needs one")


def test_every_page_loads_without_javascript_with_its_tables_and_plots(browser: webdriver.Chrome,
                                                                       explorer: ExplorerProcess) -> None:
    assert "audit OK" in explorer.first_line
    for path, title in PAGES.items():
        browser.get(explorer.url + path)
        assert browser.find_element(By.TAG_NAME, "h1").text.startswith(title), path
        assert browser.find_elements(By.TAG_NAME, "table"), path
    browser.get(explorer.url + "/run")
    assert "OK" in text_of(browser, "audit") and "exact" in text_of(browser, "genesis")
    for chart in ("loss-curve", "accuracy-curve"):
        assert browser.find_element(By.ID, chart).find_elements(By.TAG_NAME, "circle"), chart
    browser.get(explorer.url + "/experts")
    assert len(browser.find_element(By.ID, "fig2").find_elements(By.TAG_NAME, "rect")) == 4
    assert len(browser.find_element(By.ID, "activation-rounds").find_elements(By.TAG_NAME, "polyline")) == 4
    full_page_png(browser, DOCS_IMG / "explorer-experts.png")
    browser.get(explorer.url + "/edges")
    assert "slashed" in text_of(browser, "edges") and "gaussian" in text_of(browser, "edges")


def test_search_finds_a_block_by_its_hash_and_a_task_by_its_id(browser: webdriver.Chrome, explorer: ExplorerProcess,
                                                               run_dir: Path) -> None:
    with ChainStore(run_dir / "chain.sqlite", readonly=True) as chain:
        rows = list(chain.iter_raw())
    height, block_hash, _ = rows[3]
    for query, heading, where in ((block_hash, f"Block {height}", "block-hash"),
                                  ("train-000002", "Task train-000002", "task-facts")):
        browser.get(explorer.url + "/")
        box = browser.find_element(By.ID, "q")
        box.send_keys(query)
        box.submit()
        assert browser.find_element(By.TAG_NAME, "h1").text == heading
        assert browser.find_element(By.ID, where).text
    assert text_of(browser, "task-facts").startswith("block #3")
    browser.get(explorer.url + "/block/3")
    assert text_of(browser, "block-hash") == block_hash


def test_a_rejected_expert_accuses_nobody_and_shows_its_groups(browser: webdriver.Chrome, explorer: ExplorerProcess,
                                                                run_dir: Path) -> None:
    task_id, expert, evidence = decided(run_dir, "no_quorum")
    assert evidence == [], "no quorum is not proof: nobody is accused of dissent"
    browser.get(f"{explorer.url}/task/{task_id}")
    decision = next(row for row in browser.find_elements(By.CSS_SELECTOR, "#decisions tr")[1:]
                    if row.find_elements(By.TAG_NAME, "td")[0].text == str(expert))
    assert "no_quorum" in decision.text and "edge-" in decision.text  # its groups, by edge


def test_a_dissenters_evidence_is_shown_and_its_bytes_verify(browser: webdriver.Chrome, explorer: ExplorerProcess,
                                                             run_dir: Path) -> None:
    task_id, expert, evidence = decided(run_dir, "accepted")
    browser.get(f"{explorer.url}/task/{task_id}")
    decision = next(row for row in browser.find_elements(By.CSS_SELECTOR, "#decisions tr")[1:]
                    if row.find_elements(By.TAG_NAME, "td")[0].text == str(expert))
    assert "accepted" in decision.text
    rows = [row for row in browser.find_elements(By.CSS_SELECTOR, "#evidence tr")[1:]
            if row.find_elements(By.TAG_NAME, "td")[0].text == str(expert)]
    assert len(rows) == len(evidence)
    shown = {}
    for row in rows:
        cells = row.find_elements(By.TAG_NAME, "td")
        digest = cells[5].find_element(By.TAG_NAME, "span").get_attribute("title")
        shown[digest] = cells[6].find_element(By.TAG_NAME, "a").get_attribute("href")
        assert cells[4].text == "dissent"
    assert set(shown) == set(evidence)
    full_page_png(browser, DOCS_IMG / "explorer.png")
    object_url = next(iter(shown.values()))
    browser.get(object_url)
    cid = text_of(browser, "cid")
    assert task_id in text_of(browser, "mentions")
    data = httpx.get(browser.find_element(By.LINK_TEXT, "download the bytes").get_attribute("href")).content
    assert cid_of(data) == cid and data == DirectoryStore(run_dir / "store", create=False).get(cid)


def test_unknown_heights_hashes_tasks_and_cids_are_404_pages(browser: webdriver.Chrome,
                                                             explorer: ExplorerProcess) -> None:
    unknown = ["/block/9999", "/block/" + "ab" * 32, "/task/train-999999", "/object/" + cid_of(b"never stored"),
               "/object/not-a-cid/bytes", "/expert/9", "/edge/edge-99", "/no/such/page"]
    for path in unknown:
        assert httpx.get(explorer.url + path).status_code == 404, path
        browser.get(explorer.url + path)
        assert browser.find_element(By.TAG_NAME, "h1").text == "Not found", path
    browser.get(explorer.url + "/search?q=nothing-like-this")
    assert "nothing on the chain matches" in text_of(browser, "not-found")
    assert httpx.post(explorer.url + "/").status_code == 405


def test_a_tampered_run_is_served_as_the_audits_finding(browser: webdriver.Chrome, run_dir: Path,
                                                        tmp_path: Path) -> None:
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    with ChainStore(copy / "chain.sqlite", readonly=True) as chain:
        victim = chain.block_at(0).transactions[0].payload["expert_cids"][2]
    path = DirectoryStore(copy / "store").path_of(victim)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    server = ExplorerProcess(copy)
    try:
        assert "audit FAILED" in server.first_line
        for page in ("/", "/task/train-000001", "/run"):
            assert httpx.get(server.url + page).status_code == 422
            browser.get(server.url + page)
            assert browser.find_element(By.TAG_NAME, "h1").text == "Audit failed"
            finding = text_of(browser, "finding")
            assert victim in finding and "corrupt" in finding and "block 0" in finding
    finally:
        server.stop()


@pytest.mark.parametrize(("args", "needle"), [
    (["{tmp}"], "not a B-MoE run directory (a traditional run keeps no ledger)"),
    (["{tmp}/absent"], "does not exist or is not a directory"),
    ([], "give a RUN_DIR or --cluster DIR"),
    (["--cluster", "{tmp}"], "cluster.json does not exist"),
])
def test_what_is_not_a_run_or_cluster_is_one_line_and_exit_2(args: list[str], needle: str, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(sys, "argv", ["bmoe", "explorer", *(a.format(tmp=tmp_path) for a in args), "--port", "0"])
    with pytest.raises(SystemExit) as exit_info:
        main()
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert exit_info.value.code == 2 and len(lines) == 1 and needle in lines[0], lines


def test_a_port_in_use_is_one_line_and_exit_2_and_the_other_explorer_keeps_serving(
        explorer: ExplorerProcess, run_dir: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert_user_error(bmoe("explorer", run_dir, "--port", str(port)), f"cannot listen on 127.0.0.1:{port}")
    assert httpx.get(explorer.url + "/").status_code == 200
