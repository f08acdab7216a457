"""Real storage nodes on 127.0.0.1 for the network tests: subprocesses (``Cluster``) or a thread (``serving``).

``Cluster`` writes identity and enrolment files, starts ``python -m bmoe.net.store`` per node
(each in its own process group, output to a log file), waits for ``/health``, kills nodes with
any signal, restarts them, and always stops every process it started (``stop_all``).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import uvicorn
from starlette.types import ASGIApp

from bmoe.ledger.keys import Identity, derive_identity, save_identity
from bmoe.net.enrolment import save_enrolment
from bmoe.net.http.serve import bind, url_of
from bmoe.net.store.client import HttpBlobStore

SEED = 20260101
START_TIMEOUT_S = 30.0


def free_ports(count: int) -> list[int]:
    """``count`` distinct ports that were free on 127.0.0.1 a moment ago."""
    socks = []
    try:
        for _ in range(count):
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            socks.append(sock)
        return [sock.getsockname()[1] for sock in socks]
    finally:
        for sock in socks:
            sock.close()


def identity(name: str) -> Identity:
    """The test identity called ``name`` (deterministic)."""
    return derive_identity(SEED, name)


class Cluster:
    """``names`` storage nodes that list each other as peers; ``client`` and ``admin`` are enrolled too."""

    def __init__(self, root: Path, names: tuple[str, ...] = ("node-a", "node-b", "node-c"), *,
                 replication: int = 2, extra_args: tuple[str, ...] = ()) -> None:
        self.root = root
        self.names = names
        self.replication = replication
        self.extra_args = extra_args
        self.ports = dict(zip(names, free_ports(len(names)), strict=True))
        self.identities = {name: identity(name) for name in (*names, "client")}
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        root.mkdir(parents=True, exist_ok=True)
        for name in names:
            save_identity(self.key_file(name), self.identities[name])
        self.enrolled = root / "enrolled.json"
        save_enrolment(self.enrolled, {name: ident.address for name, ident in self.identities.items()})

    # --- names ---------------------------------------------------------------------------------
    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}"

    @property
    def urls(self) -> list[str]:
        return [self.url(name) for name in self.names]

    def name_of(self, url: str) -> str:
        return next(name for name in self.names if self.url(name) == url)

    def key_file(self, name: str) -> Path:
        return self.root / f"{name}.key"

    def data_dir(self, name: str) -> Path:
        return self.root / f"{name}-data"

    def log(self, name: str) -> Path:
        return self.root / f"{name}.log"

    def addresses(self) -> dict[str, str]:
        return {self.url(name): self.identities[name].address for name in self.names}

    def client(self, who: str = "client", **options: object) -> HttpBlobStore:
        ident = self.identities.get(who) or identity(who)
        options.setdefault("node_addresses", self.addresses())
        options.setdefault("retry_backoff", 0.05)
        return HttpBlobStore(self.urls, ident, **options)  # type: ignore[arg-type]

    def holders(self, cid: str) -> set[str]:
        """Nodes whose data directory has a file for ``cid``."""
        return {name for name in self.names if (self.data_dir(name) / cid[-3:-1] / cid).is_file()}

    # --- processes ------------------------------------------------------------------------------
    def command(self, name: str) -> list[str]:
        peers = ",".join(self.url(other) for other in self.names if other != name)
        return [sys.executable, "-m", "bmoe.net.store", "--host", "127.0.0.1", "--port", str(self.ports[name]),
                "--data-dir", str(self.data_dir(name)), "--key", str(self.key_file(name)),
                "--enrolled", str(self.enrolled), "--peers", peers, "--replication", str(self.replication),
                *self.extra_args]

    def spawn(self, name: str) -> None:
        assert not self.alive(name), f"{name} is already running"
        with open(self.log(name), "ab") as log:
            self.procs[name] = subprocess.Popen(self.command(name), stdout=log, stderr=subprocess.STDOUT,
                                                stdin=subprocess.DEVNULL, start_new_session=True)

    def wait_ready(self, name: str, timeout: float = START_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            proc = self.procs[name]
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited with {proc.returncode}: {self.log(name).read_text()}")
            with contextlib.suppress(httpx.HTTPError):
                reply = httpx.get(f"{self.url(name)}/health", timeout=1.0)
                if reply.status_code == 200:
                    assert reply.json()["address"] == self.identities[name].address
                    return
            time.sleep(0.05)
        raise TimeoutError(f"{name} not healthy after {timeout} s: {self.log(name).read_text()}")

    def start(self, *names: str) -> None:
        """Start ``names`` (default: every node) and wait until each is healthy.

        Ports are picked free but only bound by the nodes later, so another process may take one in
        between: when a first start of the whole cluster finds a port taken, it picks new ports and
        tries again (each node's URL is in its peers' command lines, so all nodes move together).
        """
        first_start = not names and not self.procs
        for attempt in range(3):
            for name in names or self.names:
                self.spawn(name)
            try:
                for name in names or self.names:
                    self.wait_ready(name)
                return
            except RuntimeError as exc:
                if not (first_start and "cannot listen" in str(exc)) or attempt == 2:
                    raise
                self.stop_all()
                self.procs.clear()
                self.ports = dict(zip(self.names, free_ports(len(self.names)), strict=True))

    def alive(self, name: str) -> bool:
        proc = self.procs.get(name)
        return proc is not None and proc.poll() is None

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        proc = self.procs[name]
        if proc.poll() is None:
            os.killpg(proc.pid, sig)
        proc.wait(timeout=10)

    def ensure_running(self) -> None:
        dead = [name for name in self.names if not self.alive(name)]
        if dead:
            self.start(*dead)

    def stop_all(self) -> None:
        """SIGTERM every node, SIGKILL whatever is left after 5 s."""
        for proc in self.procs.values():
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 5
        for proc in self.procs.values():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)

    def wipe(self) -> None:
        """Remove every stored object from every node's directory (nodes keep running: they cache nothing)."""
        for name in self.names:
            for path in self.data_dir(name).rglob("*"):
                if path.is_file():
                    path.unlink()


@contextlib.contextmanager
def serving(make_app: Callable[[str], ASGIApp]) -> Iterator[str]:
    """Serve ``make_app(url)`` with uvicorn in a thread on a free loopback port; yield the URL; stop it."""
    sock = bind("127.0.0.1", 0)
    url = url_of(sock)
    server = uvicorn.Server(uvicorn.Config(make_app(url), log_level="warning", access_log=False, lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            assert thread.is_alive() and time.monotonic() < deadline, "in-process server did not start"
            time.sleep(0.01)
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
