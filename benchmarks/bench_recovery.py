"""Time to recover: an edge of a B-MoE cluster killed in the middle of a round (issue 24).

Failure stays a value: an edge that dies costs the round at most its timeout and is recorded as withheld. A killed
edge that had already read its work item costs the round the edge timeout; in the next rounds it never reads one,
so the validator waits for it only the fetch grace (``NetworkEdges.FETCH_GRACE_S``, 5 s) once, and then leaves it
out until it polls again. This benchmark measures it on the paper's workload (Fashion-MNIST, N = 10, K = 3,
batches of 1000, M = 10 edges, B-MoE ``sampled`` r = 3) on a local cluster: R rounds, edge 3 killed (SIGKILL)
just after the validator published round K's work, and every round's seconds, printed beside the mean of the
rounds before the kill. hivemind's ``RemoteExpert`` has no such bound (its client waits on a dead server's
call; issue 24), so it is not measured here.

    python benchmarks/bench_recovery.py                # about 2 minutes on 2 cores
    python benchmarks/bench_recovery.py --timeout 10 --rounds 10 --kill-at 4
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bmoe.experiments.reproduction.cluster_latency import Variant
from bmoe.ledger.keys import load_identity
from bmoe.net.cluster.launch import plan, start
from bmoe.net.cluster.processes import stop
from bmoe.net.http.auth import SignedAuth
from bmoe.net.publish.command import ValidatorClient, publish_training
from bmoe.run.config import RunConfig
from bmoe.run.setup import derive_identities

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_deployment import dataset

KILLED = 3
STORES = 2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=10, help="rounds published [10]")
    parser.add_argument("--kill-at", type=int, default=4, help="the round during which edge 3 is killed [4]")
    parser.add_argument("--timeout", type=float, default=10.0, help="the validator's edge timeout, seconds [10]")
    args = parser.parse_args()
    if not 1 <= args.kill_at < args.rounds - 1:
        parser.error("--kill-at must leave at least one round before and after the kill")
    data = dataset()
    base = RunConfig(dataset=data.name, rounds=args.rounds, batch_size=1000, lr=0.01, eval_every=10**6, threads=1)
    config = Variant("bmoe", 3).configure(base)
    seconds: list[float] = []
    with tempfile.TemporaryDirectory(prefix="bmoe-bench-recovery-") as tmp:
        cluster = plan(Path(tmp) / "cluster", config, data.input_shape, data.num_classes, STORES, STORES,
                       args.timeout, 0, seeded_keys=True)
        cluster.save()
        publisher = load_identity(cluster.path(cluster.publisher_key))
        validators = [v.address for v in derive_identities(config).validators]
        try:
            start(cluster, SignedAuth(publisher, trusted=validators), 120.0, lambda record: None)
            urls = [r.url for r in cluster.by_role("validator") if r.url]
            for round_index in range(args.rounds):
                started = time.perf_counter()
                if round_index == args.kill_at:
                    victim = cluster.by_role("edge")[KILLED].pid

                    def kill(pid: int | None = victim) -> None:
                        time.sleep(0.05)  # the work item is out: the edge is reading or computing it
                        if pid is not None:
                            os.kill(pid, signal.SIGKILL)

                    threading.Thread(target=kill, daemon=True).start()
                publish_training(urls, publisher, config, data, 1, timeout=600.0, validators=validators)
                seconds.append(time.perf_counter() - started)
                marker = "  <- edge 3 killed" if round_index == args.kill_at else ""
                print(f"round {round_index}: {seconds[-1]:.3f} s{marker}", file=sys.stderr, flush=True)
            with ValidatorClient(urls[0], publisher, validators[0]) as client:
                stats: dict[str, Any] = client.stats()
        finally:
            stop([(r.pid, r.start_time) for r in cluster.processes], grace=5.0)
    normal = statistics.fmean(seconds[1:args.kill_at])
    extra = sum(s - normal for s in seconds[args.kill_at:])
    print(f"\n{os.cpu_count()} cores, load average {[round(v, 2) for v in os.getloadavg()]}; edge timeout "
          f"{args.timeout:g} s, fetch grace {stats.get('fetch_grace_s', 5.0):g} s")
    print(f"rounds before the kill (2..{args.kill_at}): {normal:.3f} s on average")
    for index in range(args.kill_at, args.rounds):
        print(f"  round {index}: {seconds[index]:7.3f} s  ({seconds[index] / normal:5.2f}x)"
              + ("  edge 3 killed during it" if index == args.kill_at else ""))
    print(f"time lost to the dead edge, all rounds from the kill on: {extra:.2f} s; edges presumed gone at the end: "
          f"{stats.get('gone_edges')}; edges timed out (read their item, never answered): "
          f"{stats.get('work', {}).get('timed_out_edges', 0)}")


if __name__ == "__main__":
    main()
