"""hivemind 1.1.12 serving the benchmark's experts, one server process per expert, and the grouped client that
drives them: the peer ``bench_peers.py`` measures bmoe against.

A server (``python benchmarks/peers_hivemind.py serve ...``, started by :class:`HivemindExperts`) is hivemind's own
``Server`` with one ``ModuleBackend``: a DHT node and its p2pd daemon on 127.0.0.1, hivemind's connection handler
and task pools, the expert trained server-side (its optimizer steps on every backward call, as hivemind experts
do). It prints one JSON line (its peer id and multiaddrs) when ready and shuts down when its standard input closes.
Nothing reaches beyond loopback: no initial peers but the servers, no IPFS bootstrap, no relay, no NAT port
mapping, no AutoNAT.

The client (:func:`grouped_round`) is what a user of hivemind writes for a top-K layer: the gate runs locally,
each expert gets the rows routed to it in ONE ``RemoteExpert`` call per round, all experts at once (threads), the
outputs are combined as bmoe combines them, and the gradients of the combined output go back to every expert at
once too (each ``RemoteExpert``'s backward is one call, which steps the server's optimizer). hivemind's own
``RemoteMixtureOfExperts`` layer would send one call per sample and expert.

Must not know: bmoe's deployment, the benchmark's table.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from bmoe.lm.model import SwiGLUExpert
from bmoe.moe.dispatch import combine, routed_samples
from bmoe.moe.experts import MLPExpert
from bmoe.moe.gate import route_top_k

START_TIMEOUT_S = 30.0  # one server's start: 3-10 s here, four at once; one that hangs never finishes
START_ATTEMPTS = 3
PARALLEL_STARTS = 4  # servers starting at once: ten at once on two cores is slower, and hangs no less
MAX_BATCH = 1 << 16  # rows per request a task pool accepts: a whole batch routed to one expert fits
# P2P.create's options that keep the daemon on loopback, talking to no one but the peers it is given
LOOPBACK_P2P = {"host_maddrs": ["/ip4/127.0.0.1/tcp/0"], "use_relay": False, "auto_nat": False,
                "nat_port_map": False, "use_ipfs": False}
ONE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


@dataclass(frozen=True)
class ExpertShape:
    """Which expert a server hosts and how it trains: ``mlp`` (input_dim -> hidden -> output_dim, bmoe's ``mlp``
    preset) or ``swiglu`` (the language model's expert, input_dim -> hidden -> input_dim)."""

    kind: str
    input_dim: int
    hidden: int
    output_dim: int
    optimizer: str  # sgd | adamw
    lr: float

    def args(self) -> list[str]:
        return ["--kind", self.kind, "--input-dim", str(self.input_dim), "--hidden", str(self.hidden),
                "--output-dim", str(self.output_dim), "--optimizer", self.optimizer, "--lr", str(self.lr)]

    def build(self) -> nn.Module:
        if self.kind == "mlp":
            return MLPExpert(self.input_dim, self.output_dim, self.hidden)
        return SwiGLUExpert(self.input_dim, self.hidden)


def serve(uid: str, shape: ExpertShape, seed: int) -> None:
    """Host expert ``uid`` until standard input closes; print ``{"peer_id", "maddrs"}`` once ready."""
    import hivemind
    from hivemind.moe.server import ModuleBackend, Server
    from hivemind.utils.tensor_descr import BatchTensorDescriptor

    torch.set_num_threads(1)
    torch.manual_seed(seed)
    module = shape.build()
    optim = torch.optim.SGD if shape.optimizer == "sgd" else torch.optim.AdamW
    backend = ModuleBackend(name=uid, module=module, optimizer=optim(module.parameters(), lr=shape.lr),
                            args_schema=(BatchTensorDescriptor(shape.input_dim),), max_batch_size=MAX_BATCH)
    dht = hivemind.DHT(start=True, **LOOPBACK_P2P)
    server = Server(dht, {uid: backend}, num_connection_handlers=1, device="cpu", start=True)
    print(json.dumps({"peer_id": dht.peer_id.to_base58(), "maddrs": [str(a) for a in dht.get_visible_maddrs()]}),
          flush=True)
    try:
        sys.stdin.read()  # until the benchmark closes the pipe
    finally:
        server.shutdown()
        server.join(timeout=10)


class HivemindExperts:
    """``len(seeds)`` hivemind servers, one process (group) each, and a client ``RemoteExpert`` per server.

    Use as a context manager: every server's process group is killed on exit, by the pid it was started with."""

    def __init__(self, shape: ExpertShape, seeds: Sequence[int], log: Callable[[str], None]) -> None:
        self.shape, self.seeds, self.log = shape, list(seeds), log
        self.processes: list[subprocess.Popen[str]] = []
        self.restarts = 0
        self.experts: list[nn.Module] = []
        self.dht = None
        self.p2p = None

    def __enter__(self) -> HivemindExperts:
        try:
            self._start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _start(self) -> None:
        import hivemind
        from hivemind.moe.client.expert import RemoteExpert
        from hivemind.moe.client.remote_expert_worker import RemoteExpertWorker
        from hivemind.moe.expert_uid import ExpertInfo
        from hivemind.p2p import PeerID

        ready = self._serve_all()
        self.log(f"{len(ready)} hivemind servers ready ({self.restarts} restarted after a start that hung)")
        peers = [maddr for info in ready for maddr in info["maddrs"]]
        self.dht = hivemind.DHT(initial_peers=peers, start=True, **LOOPBACK_P2P)
        self.p2p = p2p = RemoteExpertWorker.run_coroutine(self.dht.replicate_p2p())
        self.experts = [RemoteExpert(ExpertInfo(f"expert.{i}", PeerID.from_base58(info["peer_id"])), p2p)
                        for i, info in enumerate(ready)]
        for expert in self.experts:
            _ = expert.info  # the schema call, once, before any round is timed

    def _spawn(self, i: int) -> subprocess.Popen[str]:
        argv = [sys.executable, str(Path(__file__).resolve()), "serve", "--uid", f"expert.{i}",
                "--seed", str(self.seeds[i]), *self.shape.args()]
        process = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                   text=True, env={**os.environ, **ONE_THREAD}, start_new_session=True)
        self.processes.append(process)
        return process

    def _serve_all(self) -> list[dict[str, Any]]:
        """Start every server, :data:`PARALLEL_STARTS` at a time, and read each one's ready line. A start can hang
        (seen here on a loaded machine: one of the server's task pool processes never came up, so the server never
        became ready); a server not ready in :data:`START_TIMEOUT_S` is killed and started again."""
        ready: dict[int, dict[str, Any]] = {}
        waiting = list(range(len(self.seeds)))
        starting: dict[int, tuple[subprocess.Popen[str], float]] = {}
        tries = dict.fromkeys(waiting, 0)

        def again(i: int) -> None:
            process, _ = starting.pop(i)
            self._kill(process)
            self.processes.remove(process)
            self.restarts += 1
            waiting.append(i)

        while len(ready) < len(self.seeds):
            while waiting and len(starting) < PARALLEL_STARTS:
                i = waiting.pop(0)
                tries[i] += 1
                if tries[i] > START_ATTEMPTS:
                    raise RuntimeError(f"hivemind server expert.{i} not ready after {START_ATTEMPTS} starts of "
                                       f"{START_TIMEOUT_S:g} s each")
                starting[i] = (self._spawn(i), time.monotonic() + START_TIMEOUT_S)
            pipes = {process.stdout: i for i, (process, _) in starting.items()}
            wait = max(0.0, min(deadline for _, deadline in starting.values()) - time.monotonic())
            readable, _, _ = select.select(list(pipes), [], [], wait)
            for pipe in readable:
                i = pipes[pipe]
                line = starting[i][0].stdout.readline()  # type: ignore[union-attr]  # printed at once
                if line:
                    ready[i] = json.loads(line)
                    del starting[i]
                else:  # it exited
                    again(i)
            for i in [i for i, (_, deadline) in starting.items() if time.monotonic() >= deadline]:
                again(i)
        return [ready[i] for i in range(len(self.seeds))]

    @staticmethod
    def _kill(process: subprocess.Popen[str]) -> None:
        """The server's whole process group (its task pools, handler, DHT and p2pd), by the pid it started with."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()

    def close(self) -> None:
        from hivemind.moe.client.remote_expert_worker import RemoteExpertWorker

        self.experts = []
        if self.p2p is not None:
            RemoteExpertWorker.run_coroutine(self.p2p.shutdown())
            self.p2p = None
        if self.dht is not None:
            self.dht.shutdown()
            self.dht = None
        for process in self.processes:
            if process.stdin is not None and not process.stdin.closed:
                process.stdin.close()  # a clean shutdown first
        deadline = time.monotonic() + 2
        for process in self.processes:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            self._kill(process)
        self.processes = []


def grouped_round(experts: Sequence[nn.Module], gate: nn.Module, gate_optimizer: torch.optim.Optimizer,
                  x: torch.Tensor, loss_of: Callable[[torch.Tensor], torch.Tensor], top_k: int, out_dim: int,
                  pool: ThreadPoolExecutor) -> float:
    """One training round through remote experts: the gate and top-K routing here, one call per activated expert
    with its rows (all at once), bmoe's combine, the loss, one backward call per expert (all at once: each steps
    that server's optimizer), the gate's step here. Returns the loss."""
    routing = route_top_k(gate(x), top_k)  # (B, K) experts and weights
    groups = routed_samples(routing.experts, len(experts))
    outputs = dict(zip(groups, pool.map(lambda e: experts[e](x[groups[e]].detach()), groups), strict=True))
    held = {e: out.detach().requires_grad_() for e, out in outputs.items()}  # (n_e, out_dim) each
    y = combine(routing.experts, routing.weights, held, groups, out_dim)  # (B, out_dim)
    loss = loss_of(y)
    gate_optimizer.zero_grad()
    loss.backward()  # the gate's gradients, and each expert output's
    list(pool.map(lambda e: torch.autograd.backward(outputs[e], held[e].grad), groups))
    gate_optimizer.step()
    return float(loss.detach())


def main() -> None:
    parser = argparse.ArgumentParser(description="host one expert with hivemind (started by bench_peers.py)")
    sub = parser.add_subparsers(dest="command", required=True)
    one = sub.add_parser("serve")
    one.add_argument("--uid", required=True)
    one.add_argument("--seed", type=int, default=0)
    one.add_argument("--kind", choices=("mlp", "swiglu"), required=True)
    one.add_argument("--input-dim", type=int, required=True)
    one.add_argument("--hidden", type=int, required=True)
    one.add_argument("--output-dim", type=int, required=True)
    one.add_argument("--optimizer", choices=("sgd", "adamw"), required=True)
    one.add_argument("--lr", type=float, required=True)
    args = parser.parse_args()
    serve(args.uid, ExpertShape(args.kind, args.input_dim, args.hidden, args.output_dim, args.optimizer, args.lr),
          args.seed)


if __name__ == "__main__":
    main()
