"""What a run directory's durability costs per round: an fsync per object against one flush per block.

A B-MoE round writes a few dozen objects (task, activation, results, gradients, updates, the gate,
the output). With per-object durability each costs three fsyncs (file, shard directory, sometimes the
root); objects only need to be durable when the block naming them is persisted, so the run's store
writes them atomically and flushes once before the block (``DirectoryStore(batch=True)``, one
``syncfs``). Both modes train the same seeded rounds in one run, alternating, and the ratio is printed.

    python benchmarks/bench_store_sync.py [--rounds 20] [--dir /path/on/the/disk/to/measure]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bmoe.run.config import RunConfig
from bmoe.run.session import STORE_DIR, Session
from bmoe.storage import directory
from bmoe.storage.directory import DirectoryStore


class SyncMeter:
    """Counts and times os.fsync and syncfs calls while installed."""

    def __init__(self) -> None:
        self.calls = 0
        self.seconds = 0.0

    def wrap(self, function: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any) -> Any:
            started = time.perf_counter()
            try:
                return function(*args)
            finally:
                self.seconds += time.perf_counter() - started
                self.calls += 1
        return timed


def measure(config: RunConfig, root: Path, batch: bool, rounds: int) -> tuple[float, int, float]:
    """(wall seconds per round, sync calls per round, sync seconds per round) after one warm-up round."""
    meter = SyncMeter()
    run_dir = root / ("batch" if batch else "each")
    with Session(config, run_dir=run_dir, store=DirectoryStore(run_dir / STORE_DIR, batch=batch)) as session:
        session.train(rounds=1)
        fsync, syncfs = os.fsync, directory._syncfs
        os.fsync, directory._syncfs = meter.wrap(fsync), meter.wrap(syncfs)
        try:
            started = time.perf_counter()
            session.train(rounds=1 + rounds)
            wall = time.perf_counter() - started
        finally:
            os.fsync, directory._syncfs = fsync, syncfs
    return wall / rounds, meter.calls // rounds, meter.seconds / rounds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--dir", type=Path, default=Path.cwd(), help="where the run directories go (a real disk)")
    args = parser.parse_args()
    config = RunConfig(rounds=args.rounds + 1, malicious_ratio=0.3, eval_every=10**6)
    with tempfile.TemporaryDirectory(dir=args.dir, prefix="bmoe-sync-") as tmp:
        results = {batch: measure(config, Path(tmp) / str(batch), batch, args.rounds) for batch in (False, True)}
    each, batch = results[False], results[True]
    print(f"digits, N=10 K=3 M=10, 30 % colluding attackers, {args.rounds} rounds per mode, "
          f"run directory on {args.dir}")
    for name, (wall, calls, seconds) in (("fsync per object", each), ("flush per block", batch)):
        print(f"  {name:17s} {calls:4d} sync calls/round, {seconds * 1000:7.1f} ms in them, "
              f"round {wall * 1000:7.1f} ms")
    print(f"sync time per round, per object / per block: {each[2] / max(batch[2], 1e-9):.1f}x; "
          f"round wall time: {each[0] / batch[0]:.2f}x")


if __name__ == "__main__":
    main()
