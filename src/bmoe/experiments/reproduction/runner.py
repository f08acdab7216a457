"""Run the units a reproduction needs: finished ones are skipped, the rest run in parallel processes
(one per core, each single-threaded) with a progress bar per unit and an overall one with ETA."""

from __future__ import annotations

import multiprocessing as mp
import queue
import time
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeRemainingColumn

from bmoe.experiments.reproduction.settings import ReproSettings
from bmoe.experiments.reproduction.units import Job, load_finished


def _child(settings: ReproSettings, unit: Job, out: Path, events: Any) -> dict[str, Any]:
    last = [0.0]

    def progress(name: str, done: int, total: int) -> None:
        now = time.monotonic()
        if now - last[0] > 0.5 or done == total:
            last[0] = now
            events.put((name, done, total))

    return unit.run(settings, out, progress)


@contextmanager
def _bars(console: Any) -> Iterator[Progress]:
    with Progress(TextColumn("{task.description:<18}"), BarColumn(), MofNCompleteColumn(),
                  TimeRemainingColumn(), console=console) as bars:
        yield bars


def run_units(settings: ReproSettings, units: list[Job], out: Path, console: Any) -> dict[str, dict[str, Any]]:
    """Every unit's result, running those not finished yet."""
    results = {u.name: r for u in units if (r := load_finished(out, u, settings)) is not None}
    todo = [u for u in units if u.name not in results]
    if not todo:
        return results
    context = mp.get_context("spawn")  # a clean interpreter per worker: no inherited torch thread pools
    with context.Manager() as manager, _bars(console) as bars:
        events = manager.Queue()
        overall = bars.add_task(f"runs ({len(results)} done)", total=len(units), completed=len(results))
        tasks: dict[str, TaskID] = {}
        with ProcessPoolExecutor(max_workers=max(1, settings.workers), mp_context=context) as pool:
            pending: dict[Future[dict[str, Any]], Job] = {
                pool.submit(_child, settings, unit, out, events): unit for unit in todo}
            while pending:
                finished, _ = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
                _drain(events, bars, tasks)
                for future in finished:
                    unit = pending.pop(future)
                    results[unit.name] = future.result()  # a failure in a worker surfaces here
                    bars.advance(overall)
                    if unit.name in tasks:
                        bars.update(tasks[unit.name], visible=False)
            _drain(events, bars, tasks)
    return results


def _drain(events: Any, bars: Progress, tasks: dict[str, TaskID]) -> None:
    while True:
        try:
            name, done, total = events.get_nowait()
        except queue.Empty:
            return
        if name not in tasks:
            tasks[name] = bars.add_task(name, total=total)
        bars.update(tasks[name], completed=done, total=total)
