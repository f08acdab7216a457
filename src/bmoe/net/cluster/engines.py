"""The real engines of a cluster: its ledger on an Ethereum node, its objects on an IPFS node.

Owns what ``bmoe cluster up --ledger ethereum [--rpc-url URL] [--eth-key FILE] --store ipfs [--ipfs-api URL]``
adds to a local deployment:

* :func:`check_engines`, before anything is written: an engine the cluster is to start is installed; a
  node the user names answers (its chain id, its kubo HTTP RPC), and the sealing account there holds
  ether (else ``--eth-key`` names one that does); each failure one line (:class:`SetupError`);
* :func:`engine_records`: the processes of the engines the cluster starts itself (role ``engine``): an
  anvil (``--ledger ethereum`` without ``--rpc-url``; its home and state under ``DIR/anvil``) and an offline
  js-ipfs daemon (``--store ipfs`` without ``--ipfs-api``; its repository under ``DIR/ipfs``), each on a
  loopback port fixed in ``cluster.json``, so ``cluster restart NAME`` brings it back at the same URL;
* :func:`engine_ready`: whether an engine answers (``eth_chainId``, ``/api/v0/id``);
* :func:`fund_sealer`: once the cluster's own anvil answers, validator-0's sealing account is funded from
  anvil's dev key (a node the user names must hold a funded account already).

Each engine runs as its own process (``env`` then the binary: one pid, one process group), so
``cluster down`` stops it like any other process and leaves nothing behind.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bmoe.credentials import without_credentials
from bmoe.net.cluster_file import ProcessRecord
from bmoe.net.node_setup import SetupError
from bmoe.run.config import RunConfig

ENGINE = "engine"  # the role of an engine process in cluster.json
ANVIL = "anvil"
IPFS = "ipfs"
FUNDING_WEI = 1000 * 10**18  # anvil's dev account holds 10,000 ether


@dataclass(frozen=True)
class Engines:
    """What the engine flags of ``cluster up`` ask for: ``ledger`` bmoe | ethereum, ``store`` bmoe | ipfs."""

    ledger: str = "bmoe"
    rpc_url: str | None = None
    eth_key: str | None = None
    store: str = "bmoe"
    ipfs_api: str | None = None

    @property
    def starts_anvil(self) -> bool:
        return self.ledger == "ethereum" and self.rpc_url is None

    @property
    def starts_ipfs(self) -> bool:
        return self.store == "ipfs" and self.ipfs_api is None


def parse_engines(ledger: str | None, rpc_url: str | None, eth_key: Path | None, store: str | None,
                  ipfs_api: str | None) -> Engines:
    """The flags, checked for consistency (no node is asked anything yet)."""
    ledger, store = ledger or "bmoe", store or "bmoe"
    if ledger != "ethereum" and (rpc_url is not None or eth_key is not None):
        raise SetupError("--rpc-url and --eth-key need --ledger ethereum")
    if store != "ipfs" and ipfs_api is not None:
        raise SetupError("--ipfs-api needs --store ipfs")
    for flag, url in (("--rpc-url", rpc_url), ("--ipfs-api", ipfs_api)):
        if url is not None and not url.startswith(("http://", "https://")):
            raise SetupError(f"{flag} must be an http:// or https:// URL, got {url!r}")
        if url is not None and without_credentials(url) != url:  # a cluster records its URLs for its processes
            raise SetupError(f"{flag}: a cluster records its nodes' URLs, and credentials are never recorded: give "
                             "a node that needs none (one on a private network, or behind a local proxy)")
    key = None if eth_key is None else str(eth_key.resolve())
    return Engines(ledger, rpc_url.rstrip("/") if rpc_url else None, key, store,
                   ipfs_api.rstrip("/") if ipfs_api else None)


def planned_urls(engines: Engines, ports: list[int]) -> tuple[str | None, str | None]:
    """``(rpc_url, ipfs_api)``: the nodes named, else the loopback URLs of the engines the cluster starts
    (``ports``: one per engine it starts, anvil first)."""
    free = iter(ports)
    rpc_url = engines.rpc_url or (f"http://127.0.0.1:{next(free)}" if engines.starts_anvil else None)
    ipfs_api = engines.ipfs_api or (f"http://127.0.0.1:{next(free)}" if engines.starts_ipfs else None)
    return rpc_url, ipfs_api


def config_changes(engines: Engines, rpc_url: str | None, ipfs_api: str | None) -> dict[str, Any]:
    """The RunConfig settings the engines give (none for bmoe's own ledger and storage nodes)."""
    changes: dict[str, Any] = {}
    if engines.ledger == "ethereum":
        changes.update(consensus="ethereum", rpc_url=rpc_url, eth_key=engines.eth_key)
    if engines.store == "ipfs":
        changes.update(store="ipfs", ipfs_api=ipfs_api)
    return changes


def _ethereum() -> Any:
    try:
        from bmoe.ethereum import accounts, anvil, backend, errors, node, sender
    except ImportError as err:
        raise SetupError(f"--ledger ethereum needs the ethereum extra (pip install 'bmoe[ethereum]'): {err}") from None
    return accounts, anvil, backend, errors, node, sender


def _sealing_address(config: RunConfig) -> str:
    from bmoe.run.setup import derive_identities

    accounts, _, backend, errors, _, _ = _ethereum()
    try:
        account = backend.sealing_account(config.seed, derive_identities(config).validator, config.eth_key)
    except errors.EthereumError as err:
        raise SetupError(str(err)) from None
    return str(accounts.address_of(account))


def check_engines(engines: Engines, config: RunConfig) -> None:
    """Refuse, in one line, an engine that is not installed, a node that does not answer, an unfunded account."""
    if engines.ledger == "ethereum":
        _, anvil, _, errors, node, _ = _ethereum()
        address = _sealing_address(config)  # a bad --eth-key file is named first
        try:
            if engines.starts_anvil:
                anvil.anvil_binary()
            else:
                assert engines.rpc_url is not None
                web3 = node.open_node(engines.rpc_url, node.chain_id_of(engines.rpc_url))
                if int(web3.eth.get_balance(web3.to_checksum_address(address))) == 0:
                    raise SetupError(f"Ethereum account {address} (validator-0's sealing account) holds no ether on "
                                     f"{engines.rpc_url}: fund it, or give --eth-key FILE with a funded account")
        except errors.EthereumError as err:
            raise SetupError(str(err)) from None
    if engines.store == "ipfs":
        from bmoe.storage import StorageError
        from bmoe.storage.ipfs import IpfsStore
        from bmoe.storage.ipfs_node import jsipfs_binary

        try:
            if engines.starts_ipfs:
                jsipfs_binary()
            else:
                assert engines.ipfs_api is not None
                with IpfsStore(engines.ipfs_api) as store:
                    store.ping()
        except StorageError as err:
            raise SetupError(str(err)) from None


def engine_records(root: Path, engines: Engines, rpc_url: str | None, ipfs_api: str | None) -> list[ProcessRecord]:
    """The engine processes the cluster starts itself, their directories made (an IPFS repository is
    initialised by the daemon's first start; a later start keeps it and its objects)."""
    records = []
    if engines.starts_anvil:
        _, anvil, _, _, _, _ = _ethereum()
        assert rpc_url is not None
        home = root / ANVIL
        home.mkdir(parents=True, exist_ok=True)
        argv = ["env", f"HOME={home}", f"XDG_CONFIG_HOME={home}", "NO_COLOR=1", str(anvil.anvil_binary()),
                "--host", "127.0.0.1", "--port", rpc_url.rsplit(":", 1)[1], "--chain-id", str(anvil.DEV_CHAIN_ID),
                "--accounts", "1", "--enable-tx-gas-limit", "--state", str(home / "state.json"),
                "--state-interval", "1"]  # dumped every second too, not only at a clean stop (kill -9 loses <= 1 s)
        records.append(ProcessRecord(ANVIL, ENGINE, rpc_url, "", "", f"logs/{ANVIL}.log", argv=argv, data=ANVIL))
    if engines.starts_ipfs:
        from bmoe.storage.ipfs_node import INIT_FILE, jsipfs_binary, offline_config
        from bmoe.storage.ipfs_node import free_ports as ipfs_ports

        assert ipfs_api is not None
        repo = root / IPFS
        repo.mkdir(parents=True, exist_ok=True)
        settings = offline_config(int(ipfs_api.rsplit(":", 1)[1]), *ipfs_ports(3))
        (repo / INIT_FILE).write_text(json.dumps(settings))  # merged into the repository's config at every start
        argv = ["env", f"IPFS_PATH={repo}", str(jsipfs_binary()), "daemon", "--offline", "--enable-preload=false",
                "--init-config", str(repo / INIT_FILE)]
        records.append(ProcessRecord(IPFS, ENGINE, ipfs_api, "", "", f"logs/{IPFS}.log", argv=argv, data=IPFS))
    return records


def engine_ready(record: ProcessRecord) -> Callable[[], bool]:
    """Whether the engine ``record`` answers at its URL."""
    assert record.url is not None
    url = record.url

    def check() -> bool:
        try:
            if record.name == ANVIL:
                reply = httpx.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []},
                                   timeout=1.0)
                return reply.status_code == 200 and "result" in reply.json()
            return httpx.post(f"{url}/api/v0/id", timeout=2.0).status_code == 200
        except (httpx.HTTPError, ValueError):
            return False

    return check


def fund_sealer(config: RunConfig) -> None:
    """Fund validator-0's sealing account on the cluster's own anvil from anvil's dev key (once it runs low)."""
    accounts, anvil, _, errors, node, sender = _ethereum()
    assert config.rpc_url is not None
    address = _sealing_address(config)
    try:
        web3 = node.open_node(config.rpc_url, anvil.DEV_CHAIN_ID)
        if int(web3.eth.get_balance(web3.to_checksum_address(address))) >= FUNDING_WEI // 2:
            return
        dev = sender.TransactionSender(web3, accounts.account_from_key(anvil.DEV_KEY), anvil.DEV_CHAIN_ID)
        sender.fund(dev, [address], FUNDING_WEI)
    except errors.EthereumError as err:
        raise SetupError(f"cannot fund {address} on the cluster's anvil: {err}") from None
