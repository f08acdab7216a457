"""A local js-ipfs node as a subprocess: for the tests, the benchmarks and ``bmoe cluster up --store ipfs``.

Owns finding the engine, starting one node and stopping it:

* the engine is js-ipfs 0.66.1, installed from npm into ``engines/ipfs`` (``npm ci --prefix engines/ipfs``);
  its ``jsipfs`` command is found at ``engines/ipfs/node_modules/.bin/jsipfs`` beside the source tree, or
  wherever the environment variable ``BMOE_JSIPFS`` points;
* a node gets its own repository (``IPFS_PATH``, a temporary directory unless one is given), free
  ports on 127.0.0.1 for its HTTP RPC, gateway, gRPC and swarm, and runs offline: no bootstrap peers,
  no MDNS, no WebRTC-star, no preload servers, no address outside 127.0.0.1;
* :func:`start_node` returns once ``/api/v0/id`` answers, or raises :class:`IpfsNodeError` at its
  deadline (the node is stopped then); :meth:`IpfsNode.stop` sends SIGTERM to the node's process
  group, then SIGKILL after a grace period, and removes a temporary repository.

Must not know: the RPC calls a store makes (``ipfs.py``) or what bmoe stores.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bmoe.storage.errors import IpfsNodeError

ENGINE_DIR = Path(__file__).resolve().parents[3] / "engines" / "ipfs"
"""Where ``engines/ipfs/package.json`` installs js-ipfs (the repository root is three levels above this package)."""

BINARY_ENV = "BMOE_JSIPFS"
INSTALL_COMMAND = "npm ci --prefix engines/ipfs"
START_DEADLINE_S = 60.0  # measured: the daemon answers 3-8 s after start; a loaded CI machine gets headroom
STOP_GRACE_S = 10.0
_POLL_S = 0.2
INIT_FILE = "bmoe-init.json"  # in the node's repository: the settings js-ipfs merges into its defaults at init
LOG_FILE = "bmoe-daemon.log"  # in the node's repository: the daemon's stdout and stderr


def jsipfs_binary() -> Path:
    """The ``jsipfs`` command to run: ``$BMOE_JSIPFS`` if set, else the one ``engines/ipfs`` installs."""
    override = os.environ.get(BINARY_ENV)
    path = Path(override) if override else ENGINE_DIR / "node_modules" / ".bin" / "jsipfs"
    if not path.is_file():
        where = f"${BINARY_ENV}={override}" if override else str(path)
        raise IpfsNodeError(f"js-ipfs is not installed ({where} is missing): run `{INSTALL_COMMAND}` in the "
                            f"bmoe repository, or set {BINARY_ENV} to a jsipfs command")
    return path


def engine_installed() -> bool:
    """Whether :func:`jsipfs_binary` finds the engine."""
    try:
        jsipfs_binary()
    except IpfsNodeError:
        return False
    return True


def free_ports(count: int) -> list[int]:
    """``count`` distinct TCP ports on 127.0.0.1 that nothing listens on now (the OS's choice, held together)."""
    with contextlib.ExitStack() as stack:
        socks = [stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) for _ in range(count)]
        for sock in socks:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in socks]


def _check_free(port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError as err:
            raise IpfsNodeError(f"cannot start an IPFS node on 127.0.0.1:{port}: {err.strerror or err}") from None


def offline_config(api: int, gateway: int, rpc: int, swarm: int) -> dict[str, object]:
    """The settings merged into js-ipfs' defaults at init: loopback addresses only, every discovery off."""
    return {
        "Addresses": {"API": f"/ip4/127.0.0.1/tcp/{api}", "Gateway": f"/ip4/127.0.0.1/tcp/{gateway}",
                      "RPC": f"/ip4/127.0.0.1/tcp/{rpc}", "Swarm": [f"/ip4/127.0.0.1/tcp/{swarm}"],
                      "Announce": [], "Delegates": []},
        "Bootstrap": [],
        "Discovery": {"MDNS": {"Enabled": False}, "webRTCStar": {"Enabled": False}},
    }


@dataclass
class IpfsNode:
    """A running js-ipfs daemon; ``api_url`` is what ``--ipfs-api`` and :class:`~bmoe.storage.ipfs.IpfsStore` take."""

    api_url: str
    repo: Path
    process: subprocess.Popen[bytes]
    log: Path
    owns_repo: bool = False
    stopped: bool = field(default=False, init=False)

    def stop(self, grace: float = STOP_GRACE_S) -> None:
        """SIGTERM to the node's process group, SIGKILL after ``grace`` seconds; remove a temporary repository."""
        if self.stopped:
            return
        self.stopped = True
        _terminate(self.process, grace)
        if self.owns_repo:
            shutil.rmtree(self.repo, ignore_errors=True)

    def __enter__(self) -> IpfsNode:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _terminate(process: subprocess.Popen[bytes], grace: float) -> None:
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)  # the node runs in its own session: its group is its own
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def _log_tail(log: Path, lines: int = 5) -> str:
    try:
        text = log.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return " | ".join(line.strip() for line in text[-lines:] if line.strip())


def start_node(repo: Path | None = None, *, api_port: int | None = None,
               deadline: float = START_DEADLINE_S) -> IpfsNode:
    """Start an offline js-ipfs daemon on free loopback ports and wait until its RPC answers.

    ``repo``: the node's repository (``IPFS_PATH``); initialised if empty, kept at stop. Without it
    a temporary one is made and removed at stop. ``api_port``: the RPC's port (default: a free one).
    """
    binary = jsipfs_binary()
    if api_port is not None:
        _check_free(api_port)  # else the readiness poll could hear whatever already listens there
        ports = [api_port, *free_ports(3)]
    else:
        ports = free_ports(4)
    owns_repo = repo is None
    root = Path(tempfile.mkdtemp(prefix="bmoe-ipfs-")) if repo is None else repo
    try:
        root.mkdir(parents=True, exist_ok=True)
        process = _launch(binary, root, *ports)
    except BaseException:
        if owns_repo:
            shutil.rmtree(root, ignore_errors=True)
        raise
    node = IpfsNode(f"http://127.0.0.1:{ports[0]}", root, process, root / LOG_FILE, owns_repo)
    try:
        _wait_ready(node, deadline)
    except BaseException:
        node.stop(grace=2.0)
        raise
    return node


def _launch(binary: Path, root: Path, api: int, gateway: int, rpc: int, swarm: int) -> subprocess.Popen[bytes]:
    """Start ``jsipfs daemon`` on the repository ``root`` (initialised on first start) with these ports."""
    config_file = root / "config"
    settings = offline_config(api, gateway, rpc, swarm)
    command = [str(binary), "daemon", "--offline", "--enable-preload=false"]
    if config_file.exists():  # a kept repository: the ports it was given before may be taken now
        config = json.loads(config_file.read_text())
        config.update({key: {**config.get(key, {}), **value} if isinstance(value, dict) else value
                       for key, value in settings.items()})
        config_file.write_text(json.dumps(config, indent=2))
    else:
        (root / INIT_FILE).write_text(json.dumps(settings))
        command += ["--init-config", str(root / INIT_FILE)]
    env = {**os.environ, "IPFS_PATH": str(root)}
    with open(root / LOG_FILE, "wb") as out:
        return subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)


def _wait_ready(node: IpfsNode, deadline: float) -> None:
    """Poll ``/api/v0/id`` until it answers 200; IpfsNodeError if the daemon exits or the deadline passes."""
    until = time.monotonic() + deadline
    url = f"{node.api_url}/api/v0/id"
    with httpx.Client(timeout=2.0) as client:
        while True:
            if node.process.poll() is not None:
                raise IpfsNodeError(f"js-ipfs daemon exited with status {node.process.returncode} before its RPC "
                                    f"answered at {node.api_url} ({_log_tail(node.log)})")
            with contextlib.suppress(httpx.HTTPError):
                if client.post(url).status_code == 200:
                    return
            if time.monotonic() > until:
                raise IpfsNodeError(f"js-ipfs daemon did not answer at {url} within {deadline:g} s "
                                    f"({_log_tail(node.log)})")
            time.sleep(_POLL_S)


def main() -> None:
    """``python -m bmoe.storage.ipfs_node [--repo DIR] [--api-port N]``: run one offline node until stopped.

    Prints the node's API URL once it answers; SIGTERM or Ctrl-C stops the daemon too.
    """
    import argparse
    import sys

    parser = argparse.ArgumentParser(prog="python -m bmoe.storage.ipfs_node", description=main.__doc__)
    parser.add_argument("--repo", type=Path, default=None, help="the node's repository, kept [a temporary one]")
    parser.add_argument("--api-port", type=int, default=None, help="the RPC's port on 127.0.0.1 [a free one]")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # a plain kill stops the node too, not just this process
    try:
        node = start_node(args.repo, api_port=args.api_port)
    except IpfsNodeError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    print(node.api_url, flush=True)
    try:
        node.process.wait()
    except KeyboardInterrupt:
        pass
    finally:
        node.stop()


if __name__ == "__main__":
    main()
