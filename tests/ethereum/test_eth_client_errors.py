"""What a client is told when it is pointed at the wrong thing: each problem one line naming it, nothing sent."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from bmoe.ethereum.accounts import account_from_key, derive_eth_account, load_eth_account
from bmoe.ethereum.anvil import DEV_CHAIN_ID, DEV_KEY, Anvil
from bmoe.ethereum.contract import LedgerContract
from bmoe.ethereum.errors import (
    AccountKeyError,
    AccountUnfunded,
    EthereumError,
    NodeUnreachable,
    NotBmoeContract,
    WrongChain,
)
from bmoe.ethereum.node import open_node
from bmoe.ethereum.sender import TransactionSender
from tests.engines.anvil import anvil_node  # noqa: F401
from tests.ethereum.helpers import enrolment, funded_account

# Init code that deploys a contract whose code returns 42 for every call: code, but not bmoe's.
NOT_BMOE_INIT = "0x600a600c600039600a6000f3602a60005260206000f3"


@pytest.fixture(scope="module")
def ledger(anvil_node: Anvil) -> Iterator[LedgerContract]:  # noqa: F811
    validator = funded_account(anvil_node, "errors validator")
    contract, _ = LedgerContract.deploy(anvil_node.url, DEV_CHAIN_ID, validator, enrolment([validator.address]))
    yield contract


def one_line(error: pytest.ExceptionInfo[EthereumError], *needles: str) -> None:
    text = str(error.value)
    assert "\n" not in text and len(text) < 300, text
    for needle in needles:
        assert needle in text, text


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_an_unreachable_rpc_url_is_one_line() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(NodeUnreachable) as error:
        LedgerContract.connect(url, DEV_CHAIN_ID, "0x" + "11" * 20)
    one_line(error, "cannot reach an Ethereum node at", url)
    with pytest.raises(NodeUnreachable) as error:
        open_node("ftp://example", DEV_CHAIN_ID)
    one_line(error, "not an http:// or https:// URL")


def test_a_wrong_chain_id_is_one_line(anvil_node: Anvil, ledger: LedgerContract) -> None:  # noqa: F811
    with pytest.raises(WrongChain) as error:
        LedgerContract.connect(anvil_node.url, 1, ledger.address)
    one_line(error, f"serves chain id {DEV_CHAIN_ID}, not 1")


def test_an_address_without_bmoes_contract_is_one_line(anvil_node: Anvil, ledger: LedgerContract) -> None:  # noqa: F811
    empty = account_from_key(DEV_KEY).address
    with pytest.raises(NotBmoeContract) as error:
        LedgerContract.connect(anvil_node.url, DEV_CHAIN_ID, empty)
    one_line(error, "no contract at", empty)
    with pytest.raises(NotBmoeContract) as error:
        LedgerContract.connect(anvil_node.url, DEV_CHAIN_ID, "0x1234")
    one_line(error, "is not an Ethereum address")
    deployer = TransactionSender(open_node(anvil_node.url, DEV_CHAIN_ID), account_from_key(DEV_KEY), DEV_CHAIN_ID)
    sent = deployer.send("deploying something else", {"data": NOT_BMOE_INIT})
    other = deployer.web3.eth.get_transaction_receipt(sent.tx_hash)["contractAddress"]
    with pytest.raises(NotBmoeContract) as error:
        LedgerContract.connect(anvil_node.url, DEV_CHAIN_ID, str(other))
    one_line(error, "is not a bmoe ledger")
    assert LedgerContract.connect(anvil_node.url, DEV_CHAIN_ID, ledger.address).version() == "bmoe-ledger/1"


def test_an_account_without_funds_for_gas_is_one_line(anvil_node: Anvil, ledger: LedgerContract) -> None:  # noqa: F811
    broke = derive_eth_account(4242, "nobody funded me")
    with pytest.raises(AccountUnfunded) as error:
        LedgerContract.connect(anvil_node.url, DEV_CHAIN_ID, ledger.address, broke)
    one_line(error, broke.address, "holds 0 wei", "fund it")
    with pytest.raises(AccountUnfunded) as error:
        LedgerContract.deploy(anvil_node.url, DEV_CHAIN_ID, broke, enrolment([broke.address]))
    one_line(error, "holds 0 wei")


def test_a_bad_key_file_is_one_line(tmp_path: Path) -> None:
    key = tmp_path / "key"
    key.write_text("0x" + "ab" * 32 + "\n")
    assert load_eth_account(key).key.hex().endswith("ab" * 32)
    for text, needle in (("nonsense", "64 hex characters"), ("00" * 32, "64 hex characters")):
        key.write_text(text)
        with pytest.raises(AccountKeyError) as error:
            load_eth_account(key)
        one_line(error, str(key), needle)
    with pytest.raises(AccountKeyError) as error:
        load_eth_account(tmp_path / "missing")
    one_line(error, "cannot read Ethereum key file")
