"""A local cluster of generation edge processes on 127.0.0.1, for tests, benchmarks and demos.

Owns laying them out and their lifetime: the model's objects in a directory store and the model file naming them
(:func:`prepare_model`), one fresh random key per edge (``keys/edge-I.key``, mode 0600: nobody else can sign as
it), the callers' enrolment (the validator's address), one ``python -m bmoe.net.generation`` process per edge
started detached (``bmoe.net.cluster.processes``), output in ``logs/edge-I.log``, and readiness: ``GET /health``
answering with the edge's own address. :class:`LocalEdges` stops every process it started, whatever happens.

Must not know: the session, the chunk's decision.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import httpx

from bmoe.ledger.keys import Identity, create_identity, generate_identity
from bmoe.lm.model import MoETransformer
from bmoe.net.cluster.launch import free_ports
from bmoe.net.cluster.processes import alive, kill_now, spawn, stop
from bmoe.net.enrolment import save_enrolment
from bmoe.net.generation.experts import write_model_file
from bmoe.net.generation.remote import DEFAULT_TIMEOUT_S, RemoteGenerationEdge
from bmoe.net.node_setup import SetupError
from bmoe.run.generation import model_objects
from bmoe.storage import DirectoryStore

HOST = "127.0.0.1"
START_TIMEOUT_S = 120.0  # a process that loads torch starts in 3-20 s on a shared 2-core machine


def prepare_model(root: Path, model: MoETransformer) -> tuple[Path, Path]:
    """``model``'s objects in the directory store ``root/store`` and the model file naming them (``root/model.json``):
    what edges load. The CIDs are those of the session's genesis (``run.generation.model_objects``)."""
    store = DirectoryStore(root / "store")
    trusted, experts = model_objects(model)
    gate_cid, expert_cids = store.put(trusted), [store.put(data) for data in experts]
    write_model_file(root / "model.json", gate_cid, expert_cids)
    return root / "store", root / "model.json"


@dataclass
class EdgeProcess:
    """One started edge process."""

    name: str
    url: str
    address: str
    log: Path
    pid: int | None = None
    start_time: int | None = None

    def kill(self) -> None:
        """SIGKILL it (``kill -9``): no goodbye, its connections reset."""
        kill_now(self.pid, self.start_time)


class LocalEdges:
    """``count`` edge processes serving the model of ``model_file`` from ``store``, called by ``caller``; ``attacks``
    maps an edge's index to its extra flags (``["--attack", "zero", "--attack-layer", "1"]``)."""

    def __init__(self, root: Path, count: int, store: Path | str, model_file: Path, caller: str,
                 attacks: Mapping[int, Sequence[str]] | None = None, threads: int = 1) -> None:
        self.root = root
        (root / "keys").mkdir(parents=True, exist_ok=True)
        (root / "logs").mkdir(exist_ok=True)
        save_enrolment(root / "callers.json", {"validator-0": caller})
        self.argv: list[list[str]] = []
        self.processes: list[EdgeProcess] = []
        for index, port in enumerate(free_ports(count)):
            name = f"edge-{index}"
            key = generate_identity(name)
            create_identity(root / "keys" / f"{name}.key", key)
            self.argv.append([sys.executable, "-m", "bmoe.net.generation", "--host", HOST, "--port", str(port),
                              "--key", str(root / "keys" / f"{name}.key"), "--store", str(store),
                              "--model", str(model_file), "--enrolled", str(root / "callers.json"),
                              "--threads", str(threads), *(attacks or {}).get(index, ())])
            log = root / "logs" / f"{name}.log"
            self.processes.append(EdgeProcess(name, f"http://{HOST}:{port}", key.address, log))

    def start(self, timeout: float = START_TIMEOUT_S) -> LocalEdges:
        """Start every process, and wait until each answers with its own key."""
        try:
            for process, argv in zip(self.processes, self.argv, strict=True):
                process.pid, process.start_time = spawn(argv, process.log)
            for process in self.processes:
                _wait_ready(process, timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def remote(self, caller: Identity, timeout: float = DEFAULT_TIMEOUT_S) -> list[RemoteGenerationEdge]:
        """The validator's handle on each edge, in order."""
        return [RemoteGenerationEdge(p.url, p.address, caller, timeout) for p in self.processes]

    def stop(self) -> None:
        stop([(p.pid, p.start_time) for p in self.processes], grace=3.0)

    def __enter__(self) -> LocalEdges:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.stop()


def _wait_ready(process: EdgeProcess, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive(process.pid, process.start_time):
            lines = process.log.read_text(errors="replace").strip().splitlines() if process.log.exists() else []
            raise SetupError(f"{process.name} exited during start-up (see {process.log}): "
                             f"{lines[-1] if lines else ''}")
        try:
            reply = httpx.get(f"{process.url}/health", timeout=1.0)
            if reply.status_code == 200 and reply.json().get("address") == process.address:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise SetupError(f"{process.name} not ready after {timeout:g} s (see {process.log})")
