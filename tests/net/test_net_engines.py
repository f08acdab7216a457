"""A whole deployment on real engines: `bmoe cluster up --ledger ethereum --store ipfs` starts an anvil and a
js-ipfs daemon beside the validator and the edges; the same seeded run reaches the state root, gate and expert
CIDs of the run in process on bmoe's own ledger and directory store; `bmoe audit --cluster` checks the
contract's chain against the IPFS node; `cluster restart` and `cluster down` handle the engines like any
process. Bad engine flags: one line, exit 2, nothing written."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bmoe.ethereum.anvil import Anvil
from bmoe.ledger.chainstore import ChainStore
from bmoe.ledger.snapshot import chain_snapshot
from bmoe.net.cluster.processes import alive
from bmoe.run.config import from_dict
from bmoe.run.session import Session
from bmoe.storage.ipfs import IpfsStore
from tests.cli.in_process import bmoe_here
from tests.engines.anvil import anvil_node, needs_anvil  # noqa: F401
from tests.engines.ipfs import needs_ipfs
from tests.net.deploy import LocalCluster, cluster_data, processes_naming, run_module

pytestmark = [needs_anvil, needs_ipfs]

# N=4 experts, K=2, M=4 edges (the last one attacks with Gaussian noise, probability 1), 32-sample tasks
FLAGS = ("--edges", "4", "--experts", "4", "--top-k", "2", "--batch-size", "32", "--hidden", "16", "--dataset",
         "synthetic", "--malicious", "0.25", "--attack", "gaussian", "--attack-param", "probability=1", "--seed", "11",
         "--edge-timeout", "6")
ROUNDS = 2


@pytest.fixture(scope="module")
def on_engines(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    cluster = LocalCluster(tmp_path_factory.mktemp("engines") / "cluster", 6.0)
    try:
        result = run_module("bmoe", "cluster", "up", "--dir", cluster.root, *FLAGS, "--ledger", "ethereum",
                            "--store", "ipfs")
        assert result.returncode == 0, result.stdout + result.stderr + cluster.logs()
        yield cluster
    finally:
        left = cluster.stop_everything()
        assert left == [], f"processes left behind: {left}"


def _block(chain_file: Path, height: int) -> tuple[str, str]:
    with chain_snapshot(chain_file) as chain:
        header = chain.block_at(height).header
        return header.state_root, header.consensus


def test_a_cluster_on_anvil_and_ipfs_reaches_the_state_of_the_run_on_bmoes_own_ledger(
        on_engines: LocalCluster, tmp_path: Path) -> None:
    cluster = on_engines.description
    assert [(r.name, r.role) for r in cluster.by_role("engine")] == [("anvil", "engine"), ("ipfs", "engine")]
    assert cluster.stores == [] and not cluster.by_role("store") and cluster.ipfs_api == cluster.process("ipfs").url
    config = on_engines.config
    assert (config.consensus, config.rpc_url, config.store, config.ipfs_api) == (
        "ethereum", cluster.process("anvil").url, "ipfs", cluster.ipfs_api)

    result = run_module("bmoe", "train", "--cluster", on_engines.root, "--rounds", str(ROUNDS), timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr + on_engines.logs()
    head = on_engines.get("/head")
    assert head["height"] == ROUNDS
    task = on_engines.get("/tasks/train-000001")
    assert task["accepted"] == 4 and {m["edge"] for m in task["misbehaviour"]} == {cluster.edge(3).address}

    own = from_dict({**config.to_dict(), "consensus": "pow", "rpc_url": None, "eth_key": None, "store": "directory",
                     "ipfs_api": None})
    with Session(own, dataset=cluster_data(on_engines), run_dir=tmp_path / "own",
                 identities=on_engines.identities()) as session:  # the cluster's keys
        session.train(rounds=ROUNDS)
        state = session.node.state
        gate, experts = state.gate_cid, list(state.expert_cids)
    with ChainStore(tmp_path / "own" / "chain.sqlite") as chain:
        mined = chain.block_at(ROUNDS).header
    sealed_root, engine = _block(cluster.run_dir(cluster.process("validator-0")) / "chain.sqlite", ROUNDS)
    assert (engine, mined.consensus) == ("ethereum", "pow")
    assert sealed_root == mined.state_root  # accepted results, expert and gate CIDs, balances
    assert (head["gate_cid"], head["expert_cids"]) == (gate, experts)
    with IpfsStore(cluster.ipfs_api) as node:  # the objects are on the IPFS node, each read verified
        assert node.get(gate) and all(node.get(cid) for cid in experts)


def test_audit_checks_the_clusters_contract_chain_against_the_ipfs_node(on_engines: LocalCluster) -> None:
    head = on_engines.get("/head")["head_hash"]
    result = run_module("bmoe", "audit", "--cluster", on_engines.root, "--expect-head", head, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Ethereum chain 31337" in result.stdout and f"head {head}" in result.stdout


def test_status_restart_and_down_handle_the_engines(on_engines: LocalCluster) -> None:
    status = run_module("bmoe", "cluster", "status", "--dir", on_engines.root)
    assert status.returncode == 0, status.stdout + status.stderr
    for name in ("anvil", "ipfs"):
        assert any(line.split()[:2] == [name, "engine"] and "running, healthy" in line
                   for line in status.stdout.splitlines()), status.stdout
    height = on_engines.get("/head")["height"]
    restarted = run_module("bmoe", "cluster", "restart", "--dir", on_engines.root, "anvil")
    assert restarted.returncode == 0, restarted.stdout + restarted.stderr
    result = run_module("bmoe", "train", "--cluster", on_engines.root, "--rounds", "1", timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr + on_engines.logs()  # the contract kept its state
    assert on_engines.get("/head")["height"] == height + 1

    engines = [(r.pid, r.start_time) for r in on_engines.description.by_role("engine")]
    down = run_module("bmoe", "cluster", "down", "--dir", on_engines.root)
    assert down.returncode == 0, down.stdout + down.stderr
    assert "none left" in down.stdout
    assert not any(alive(pid, started) for pid, started in engines)
    assert processes_naming(str(on_engines.root)) == []


@pytest.mark.parametrize(("flags", "needle"), [
    (["--ledger", "ethereum", "--rpc-url", "http://127.0.0.1:1"], "cannot reach an Ethereum node"),
    (["--store", "ipfs", "--ipfs-api", "http://127.0.0.1:1"], "IPFS API http://127.0.0.1:1 is unreachable"),
    (["--store", "ipfs", "--stores", "2"], "under --store ipfs every object lives on the IPFS node"),
    (["--rpc-url", "http://127.0.0.1:1"], "--rpc-url and --eth-key need --ledger ethereum"),
    (["--ipfs-api", "http://127.0.0.1:1"], "--ipfs-api needs --store ipfs"),
    (["--ledger", "ethereum", "--consensus", "pbft", "--validators", "4"], "drop --consensus pbft"),
])
def test_bad_engine_flags_are_one_line_and_write_nothing(tmp_path: Path, flags: list[str], needle: str) -> None:
    result = bmoe_here("cluster", "up", "--dir", tmp_path / "c", *FLAGS, *flags)
    assert result.returncode == 2, result.stdout + result.stderr
    assert needle in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert not (tmp_path / "c").exists()


def test_an_unfunded_account_on_your_node_is_refused(anvil_node: Anvil, tmp_path: Path) -> None:  # noqa: F811
    key = tmp_path / "key.hex"
    key.write_text("0x" + "11" * 32 + "\n")
    result = run_module("bmoe", "cluster", "up", "--dir", tmp_path / "c", *FLAGS, "--ledger", "ethereum",
                        "--rpc-url", anvil_node.url, "--eth-key", key)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "holds no ether" in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert not (tmp_path / "c").exists()
