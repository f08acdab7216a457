"""Calling several edges at once: a layer's calls go to their edges concurrently, so a layer costs its slowest
edge's round trip, not the sum of them all (edges far apart on a network, or processes on other cores).

:func:`fan_out` runs each thunk on a shared thread pool and returns, in the thunks' order, each one's result or the
exception it raised; the caller then applies the results in that order, so nothing that is recorded (commitments,
their order, which edge counts as gone first) depends on which edge answered first. One thunk runs in the calling
thread. Edges must tolerate being called from a pool thread: in-process edges compute with torch (which releases the
GIL), remote ones wait on their own HTTP client.

Must not know: the ledger, the engine, what an edge computes.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
MAX_WORKERS = 32  # edges called at once; more wait for a free thread

_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _executor() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(MAX_WORKERS, thread_name_prefix="bmoe-edge-call")
        return _pool


def fan_out(thunks: Sequence[Callable[[], T]]) -> list[T | Exception]:
    """Each of ``thunks`` run concurrently: its result or the exception it raised, in ``thunks``' order."""
    if len(thunks) <= 1:
        return [_outcome(thunk) for thunk in thunks]
    futures = [_executor().submit(_outcome, thunk) for thunk in thunks]
    return [future.result() for future in futures]


def _outcome(thunk: Callable[[], T]) -> T | Exception:
    try:
        return thunk()
    except Exception as err:  # a value for the caller, which raises or records it in order
        return err


__all__: Sequence[str] = ("fan_out",)
