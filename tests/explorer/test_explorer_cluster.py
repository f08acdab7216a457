"""`bmoe explorer --cluster DIR` in a real browser, on a live local cluster (2 storage nodes, a PoW validator, 4
edges, the last one adding Gaussian noise to every answer): the cluster view shows every process healthy and
the validator's head, and updates by itself when a new round seals; the chain pages, audited against the
storage nodes, then show the new block and the attacker's evidence."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By

from tests.explorer.browser import ExplorerProcess, follow, text_of, wait_for_text
from tests.net.deploy import LocalCluster, cluster_data, running_cluster


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    with running_cluster(tmp_path_factory.mktemp("explorer-cluster") / "cluster", 5.0) as (cluster, _):
        cluster.publish(1, cluster_data(cluster))
        yield cluster


@pytest.fixture(scope="module")
def explorer(deployed: LocalCluster) -> Iterator[ExplorerProcess]:
    server = ExplorerProcess("--cluster", deployed.root)
    try:
        yield server
    finally:
        server.stop()


def test_the_cluster_view_shows_every_process_healthy_and_the_validators_head(
        browser: webdriver.Chrome, explorer: ExplorerProcess, deployed: LocalCluster) -> None:
    assert "audit OK" in explorer.first_line
    browser.get(explorer.url + "/cluster?refresh=0")  # read while it holds still
    rows = {row.find_elements(By.TAG_NAME, "td")[0].text: row.text
            for row in browser.find_elements(By.CSS_SELECTOR, "#processes tr")[1:]}
    assert set(rows) == {record.name for record in deployed.description.processes}
    for name, row in rows.items():
        assert "running" in row and "stopped" not in row, row
        assert ("healthy" in row) == (not name.startswith("edge-")), row
    head = deployed.get("/head")
    assert head["head_hash"][:16] in text_of(browser, "heads") and "all 7 processes running" in text_of(
        browser, "cluster-summary")


def test_the_cluster_view_updates_itself_after_a_new_round_seals_and_the_chain_shows_it(
        browser: webdriver.Chrome, explorer: ExplorerProcess, deployed: LocalCluster) -> None:
    browser.get(explorer.url + "/cluster")
    before = deployed.get("/head")
    wait_for_text(browser, "heads", before["head_hash"][:16])
    deployed.publish(1, cluster_data(deployed))
    after = deployed.get("/head")
    assert after["height"] == before["height"] + 1
    wait_for_text(browser, "heads", after["head_hash"][:16])  # the page reloaded itself: no get() since
    follow(browser, "#heads a")
    assert browser.find_element(By.TAG_NAME, "h1").text == f"Block {after['height']}"
    browser.find_element(By.CSS_SELECTOR, "#header a[href^='/task/']").click()
    attacker = deployed.description.edge(3).address
    evidence = text_of(browser, "evidence")
    assert "edge-3" in evidence and "dissent" in evidence
    assert text_of(browser, "decisions").count("accepted") >= 1
    assert httpx.get(f"{explorer.url}/edge/{attacker}").status_code == 200
