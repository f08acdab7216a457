"""Running a configured session to completion: rounds with a progress bar, metrics, summary; the store it runs on."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bmoe.experiments.metrics import write_metrics
from bmoe.protocol.round import RoundOutcome
from bmoe.run.config import RunConfig
from bmoe.run.session import Session

if TYPE_CHECKING:
    from bmoe.storage.ipfs import IpfsStore

Progress = Callable[[RoundOutcome], None]


@contextlib.contextmanager
def run_store(config: RunConfig) -> Iterator[IpfsStore | None]:
    """The store ``config`` names, checked reachable, for ``Session(store=...)``; None for a run directory's own."""
    if config.store != "ipfs":
        yield None
        return
    from bmoe.storage.ipfs import DEFAULT_API, IpfsStore

    with IpfsStore(config.ipfs_api or DEFAULT_API) as store:
        store.ping()  # an unreachable node is named before the run directory is touched
        yield store


def train_run(config: RunConfig, run_dir: Path | None = None, on_round: Progress | None = None,
              session: Session | None = None) -> dict[str, Any]:
    """Train ``config`` (resuming a B-MoE run directory), then summarise; writes metrics in ``run_dir``."""
    started = time.perf_counter()
    with contextlib.ExitStack() as owned:  # what this call opens, it closes: the session, then its store
        if session is None:
            store = owned.enter_context(run_store(config))
            session = owned.enter_context(Session(config, run_dir=run_dir, store=store))
        session.train(on_round=on_round)
        accuracy = session.evaluate()
        summary = summarise(session, accuracy, time.perf_counter() - started)
        if run_dir is not None:
            write_metrics(run_dir, session.history, summary)
        return summary


def summarise(session: Session, test_accuracy: float, seconds: float) -> dict[str, Any]:
    config = session.config
    history = [r for r in session.history if r["kind"] == "train"]
    records = session.node.view().edge_records
    return {
        "framework": config.framework,
        "dataset": config.dataset,
        "malicious_ratio": config.malicious_ratio,
        "attack": config.attack if config.malicious_edges else "none",
        "rounds": session.trained_rounds,
        "test_accuracy": test_accuracy,
        "final_loss": history[-1]["loss"] if history else None,
        "rejected_results": sum(r["rejected"] for r in history),
        "misbehaviour_records": sum(r.dissent + r.withheld for r in records.values()),
        "head_hash": session.head_hash,
        "height": session.node.view().height,
        "config_hash": config.hash(),
        "seconds": seconds,
    }
