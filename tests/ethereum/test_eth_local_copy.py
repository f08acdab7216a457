"""A run sealed on Ethereum, on a real anvil: the node's ``user:password@`` is used but never recorded (not in
``config.json``, not in the audit's report), the flag or ``BMOE_RPC_URL`` gives it each time; and the audit
holds the run directory's copy of the chain to the rules of the plain audit, its stored hash column included."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest

from bmoe.ethereum.accounts import derive_eth_account
from bmoe.ethereum.anvil import Anvil
from bmoe.ethereum.sender import fund
from tests.cli.in_process import bmoe_here
from tests.engines.anvil import anvil_node  # noqa: F401
from tests.ethereum.helpers import ETHER, dev_sender

SEED = 9
RUN = ["--dataset", "synthetic", "--rounds", "2", "--experts", "4", "--top-k", "2", "--edges", "5",
       "--batch-size", "32", "--eval-every", "10", "--seed", str(SEED)]
SECRET = "s3cret-pass"


def with_credentials(url: str) -> str:
    return url.replace("http://", f"http://auditor:{SECRET}@", 1)


@pytest.fixture(scope="module")
def run_dir(anvil_node: Anvil, tmp_path_factory: pytest.TempPathFactory) -> Path:  # noqa: F811
    """A run sealed through a URL with credentials (anvil ignores them; they travel as HTTP basic auth)."""
    fund(dev_sender(anvil_node), [derive_eth_account(SEED, "validator-0").address], 10 * ETHER)
    directory = tmp_path_factory.mktemp("eth-copy") / "run"
    result = bmoe_here("train", "--run-dir", directory, "--ledger", "ethereum", "--rpc-url",
                  with_credentials(anvil_node.url), *RUN)
    assert result.returncode == 0, result.stderr
    return directory


def test_credentials_in_the_rpc_url_are_never_recorded(run_dir: Path, anvil_node: Anvil) -> None:  # noqa: F811
    assert SECRET not in "".join(path.read_text(errors="replace") for path in run_dir.glob("*.json"))
    assert json.loads((run_dir / "config.json").read_text())["rpc_url"] == anvil_node.url


def test_the_audit_takes_credentials_from_the_environment_and_reports_none(
        run_dir: Path, anvil_node: Anvil) -> None:  # noqa: F811
    result = bmoe_here("audit", run_dir, env={"BMOE_RPC_URL": with_credentials(anvil_node.url)})
    assert result.returncode == 0, result.stderr
    assert f"at {anvil_node.url} " in result.stdout and SECRET not in result.stdout + result.stderr


def test_an_edited_hash_column_of_the_local_copy_fails_the_ethereum_audit_as_it_fails_the_plain_one(
        run_dir: Path, tmp_path: Path) -> None:
    copy = tmp_path / "edited"
    shutil.copytree(run_dir, copy)
    with sqlite3.connect(copy / "chain.sqlite") as db:
        db.execute("UPDATE blocks SET hash = ? WHERE height = 1", ("ab" * 32,))
    result = bmoe_here("audit", copy)  # read from the contract (the recorded URL)
    assert result.returncode != 0, result.stdout
    assert "block 1" in result.stderr and "stored hash abab" in result.stderr, result.stderr
