"""A local anvil node (Foundry's Ethereum dev node) for tests and benchmarks.

Owns starting anvil on 127.0.0.1 on a free port with its home and state in a temporary directory
(anvil writes under ``$HOME``; history is pruned, nothing persists), waiting until it answers
``eth_chainId`` within a deadline, and stopping it cleanly. The binary comes from npm
(``engines/ethereum``: ``npm ci --prefix engines/ethereum``), or from ``$BMOE_ANVIL``.

anvil's well-known dev account 0 (:data:`DEV_KEY`) holds test ether; :func:`bmoe.ethereum.sender.fund`
moves it to the accounts a run derives, by ordinary signed transfers, as on any node where one holds a
funded key.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

import httpx

from bmoe.ethereum.errors import AnvilUnavailable

ANVIL_PACKAGE = "@foundry-rs/anvil-linux-amd64"
INSTALL_COMMAND = "npm ci --prefix engines/ethereum"
ENGINE_DIR = Path(__file__).resolve().parents[3] / "engines" / "ethereum"  # in a checkout
DEFAULT_BINARY = ENGINE_DIR / "node_modules" / ANVIL_PACKAGE / "bin" / "anvil"
DEV_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"  # anvil's dev account 0
DEV_CHAIN_ID = 31337
START_SECONDS = 20.0
_LISTENING = re.compile(r"Listening on 127\.0\.0\.1:(\d+)")


def anvil_binary() -> Path:
    """The anvil executable: ``$BMOE_ANVIL``, else the one ``engines/ethereum`` installs."""
    configured = os.environ.get("BMOE_ANVIL")
    binary = Path(configured) if configured else DEFAULT_BINARY
    if not (binary.is_file() and os.access(binary, os.X_OK)):
        where = f"BMOE_ANVIL={configured}" if configured else str(binary)
        raise AnvilUnavailable(f"anvil is not installed ({where} is not an executable); run `{INSTALL_COMMAND}`")
    return binary


def anvil_installed() -> bool:
    """Whether :func:`anvil_binary` finds an executable."""
    try:
        anvil_binary()
    except AnvilUnavailable:
        return False
    return True


class Anvil:
    """An anvil process; a context manager. ``block_time``: seconds between blocks (None: a block per
    transaction, mined at once); ``tx_gas_cap``: enforce EIP-7825's per-transaction gas cap (2**24),
    as mainnet does since Osaka."""

    def __init__(self, chain_id: int = DEV_CHAIN_ID, block_time: float | None = None, tx_gas_cap: bool = True) -> None:
        self.chain_id = chain_id
        self.block_time = block_time
        self.tx_gas_cap = tx_gas_cap
        self.url = ""
        self._process: subprocess.Popen[bytes] | None = None
        self._home: Path | None = None

    def start(self) -> Anvil:
        binary = anvil_binary()
        self._home = Path(tempfile.mkdtemp(prefix="bmoe-anvil-"))
        log_path = self._home / "anvil.log"
        command = [str(binary), "--host", "127.0.0.1", "--port", "0", "--chain-id", str(self.chain_id),
                   "--prune-history", "--accounts", "1"]
        if self.block_time is not None:
            command += ["--block-time", str(self.block_time)]
        if self.tx_gas_cap:
            command.append("--enable-tx-gas-limit")
        env = {**os.environ, "HOME": str(self._home), "XDG_CONFIG_HOME": str(self._home), "NO_COLOR": "1"}
        with log_path.open("wb") as log:
            self._process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                             cwd=self._home, env=env)
        try:
            self.url = self._wait_ready(log_path)
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self, log_path: Path) -> str:
        assert self._process is not None
        deadline = time.monotonic() + START_SECONDS
        url = ""
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                tail = log_path.read_text(errors="replace").strip().splitlines()[-1:]
                raise AnvilUnavailable(f"anvil exited with status {self._process.returncode}: {' '.join(tail)}")
            if not url:
                found = _LISTENING.search(log_path.read_text(errors="replace"))
                url = f"http://127.0.0.1:{found.group(1)}" if found else ""
            if url and _answers_chain_id(url) == self.chain_id:
                return url
            time.sleep(0.05)
        raise AnvilUnavailable(f"anvil did not answer eth_chainId within {START_SECONDS:.0f} s")

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._home is not None:
            shutil.rmtree(self._home, ignore_errors=True)
            self._home = None

    def __enter__(self) -> Anvil:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.stop()


def _answers_chain_id(url: str) -> int | None:
    try:
        reply = httpx.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}, timeout=1.0)
        return int(reply.json()["result"], 16)
    except (httpx.HTTPError, ValueError, KeyError, TypeError):
        return None
