"""fan_out: edges called at once, results and exceptions returned in call order (protocol/generation/fan_out.py)."""

from __future__ import annotations

import threading

from bmoe.protocol.generation.edges import EdgeGone
from bmoe.protocol.generation.fan_out import fan_out


def test_thunks_run_concurrently() -> None:
    barrier = threading.Barrier(3, timeout=10)  # passes only if all three wait at the same time

    def meet(value: int) -> int:
        barrier.wait()
        return value

    assert fan_out([lambda: meet(1), lambda: meet(2), lambda: meet(3)]) == [1, 2, 3]


def test_results_and_exceptions_come_back_in_call_order() -> None:
    gone = EdgeGone("ab" * 32)
    order: list[int] = []

    def slow_first() -> int:
        threading.Event().wait(0.05)
        order.append(0)
        return 0

    def raises() -> int:
        order.append(1)
        raise gone

    outcomes = fan_out([slow_first, raises, lambda: 2])
    assert outcomes[0] == 0 and outcomes[1] is gone and outcomes[2] == 2
    assert sorted(order) == [0, 1]


def test_one_thunk_runs_in_the_calling_thread() -> None:
    assert fan_out([threading.get_ident]) == [threading.get_ident()]
    assert fan_out([]) == []
