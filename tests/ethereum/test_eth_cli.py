"""`bmoe train|infer --ledger ethereum --rpc-url URL` seal every block through the run's contract on a real
anvil; the same seeded run reaches the same state root, expert and gate CIDs as on bmoe's own chain; `bmoe
audit` replays the contract's chain and names a tampered object; bad endpoints and accounts are one line and
exit 2, with nothing written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bmoe.ethereum.accounts import account_from_key, derive_eth_account
from bmoe.ethereum.anvil import DEV_KEY, Anvil
from bmoe.ethereum.sender import fund
from bmoe.ledger.chainstore import ChainStore
from bmoe.storage import DirectoryStore
from tests.cli.helpers import assert_user_error, same_run_twice
from tests.cli.in_process import bmoe_here as bmoe
from tests.engines.anvil import anvil_node  # noqa: F401
from tests.ethereum.helpers import ETHER, dev_sender

SEED = 5
RUN = ["--rounds", "2", "--limit-train", "200", "--limit-test", "100", "--experts", "4", "--top-k", "2", "--edges",
       "5", "--eval-every", "10", "--malicious-ratio", "0.4", "--stake", "250", "--seed", str(SEED)]


def _head(run_dir: Path) -> dict[str, object]:
    with ChainStore(run_dir / "chain.sqlite") as chain:
        block = chain.block_at(chain.height())
        return {"height": block.header.height, "state_root": block.header.state_root,
                "consensus": block.header.consensus, "certificate": block.certificate}


@pytest.fixture(scope="module")
def runs(anvil_node: Anvil, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:  # noqa: F811
    """The same seeded run, once sealed on Ethereum and once on bmoe's own chain."""
    fund(dev_sender(anvil_node), [derive_eth_account(SEED, "validator-0").address], 10 * ETHER)
    return same_run_twice(tmp_path_factory.mktemp("eth-runs"), RUN,
                          ("on-ethereum", ["--ledger", "ethereum", "--rpc-url", anvil_node.url]), ("own", []))


def test_a_run_sealed_on_ethereum_reaches_the_state_of_the_same_run_on_bmoes_chain(runs: tuple[Path, Path]) -> None:
    on_chain, own = runs
    sealed, mined = _head(on_chain), _head(own)
    assert sealed["height"] == mined["height"] == 2
    assert sealed["state_root"] == mined["state_root"]  # accepted results, expert and gate CIDs, balances
    assert (sealed["consensus"], mined["consensus"]) == ("ethereum", "pow")
    certificate = sealed["certificate"]
    assert isinstance(certificate, dict) and certificate["chain_id"] == 31337
    config = json.loads((on_chain / "config.json").read_text())
    assert config["consensus"] == "ethereum" and config["rpc_url"].startswith("http://127.0.0.1:")


def test_infer_and_audit_read_the_contract(runs: tuple[Path, Path], anvil_node: Anvil) -> None:  # noqa: F811
    on_chain, _ = runs
    result = bmoe("infer", on_chain, "--limit", "40")
    assert result.returncode == 0, result.stderr
    result = bmoe("audit", on_chain)
    assert result.returncode == 0, result.stderr
    assert "contract 0x" in result.stdout and "Ethereum chain 31337" in result.stdout
    assert "transactions of 1 genesis validator(s) to contract" in result.stdout


def test_audit_names_a_tampered_object(runs: tuple[Path, Path], tmp_path: Path) -> None:
    on_chain, _ = runs
    with ChainStore(on_chain / "chain.sqlite") as chain:
        gate_cid = str(chain.block_at(0).transactions[0].payload["gate_cid"])
    path = DirectoryStore(on_chain / "store", create=False).path_of(gate_cid)
    original = path.read_bytes()
    try:
        path.write_bytes(original[:-1] + bytes([original[-1] ^ 1]))
        result = bmoe("audit", on_chain)
        assert result.returncode != 0
        assert gate_cid in result.stdout + result.stderr
    finally:
        path.write_bytes(original)


def test_a_run_seals_from_the_account_in_a_key_file(anvil_node: Anvil, tmp_path: Path) -> None:  # noqa: F811
    key = tmp_path / "key.hex"
    key.write_text(DEV_KEY + "\n")
    result = bmoe("train", "--run-dir", tmp_path / "r", "--ledger", "ethereum", "--rpc-url", anvil_node.url,
                  "--eth-key", key, *RUN[:-1], "78", "--rounds", "1")
    assert result.returncode == 0, result.stderr
    with ChainStore(tmp_path / "r" / "chain.sqlite") as chain:
        accounts = chain.block_at(0).transactions[0].payload["consensus"]["accounts"]
    assert list(accounts.values()) == [account_from_key(DEV_KEY).address.lower()]


def test_an_unreachable_node_is_one_line_and_writes_nothing(tmp_path: Path) -> None:
    result = bmoe("train", "--run-dir", tmp_path / "r", "--ledger", "ethereum", "--rpc-url", "http://127.0.0.1:1",
                  *RUN)
    assert_user_error(result, "http://127.0.0.1:1")
    assert not (tmp_path / "r").exists()


def test_an_unfunded_account_is_one_line_and_writes_nothing(anvil_node: Anvil, tmp_path: Path) -> None:  # noqa: F811
    result = bmoe("train", "--run-dir", tmp_path / "r", "--ledger", "ethereum", "--rpc-url", anvil_node.url,
                  *RUN[:-1], "77")  # seed 77's validator account holds nothing
    assert_user_error(result, "fund it")
    assert not (tmp_path / "r").exists()


def test_a_resumed_run_on_another_chain_or_contract_is_refused(runs: tuple[Path, Path], tmp_path: Path) -> None:
    on_chain, _ = runs
    before = _head(on_chain)
    with Anvil(chain_id=4242) as other:
        result = bmoe("train", "--run-dir", on_chain, "--rpc-url", other.url, *RUN, "--rounds", "3")
        assert_user_error(result, "chain id 4242", "not 31337")
    with Anvil() as fresh:  # the same chain id, but the genesis's contract is not there
        result = bmoe("train", "--run-dir", on_chain, "--rpc-url", fresh.url, *RUN, "--rounds", "3")
        assert_user_error(result, "no contract at")
    assert _head(on_chain) == before  # nothing sealed half-way
