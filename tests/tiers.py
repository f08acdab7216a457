"""The test tiers: markers applied by what a test uses, and the fast tier's time guard (a pytest plugin).

A test is marked by the objects its code and its fixtures' code name (followed into helpers under
``tests/``), not by hand lists: ``cluster`` (a local cluster of processes: ``tests/net/cluster.py``,
``tests/net/deploy.py``, ``tests/net/netns.py``), ``engines`` (anvil or an IPFS node), ``browser``
(chromium), ``subprocess`` (``python -m bmoe`` or one of its modules in a child process).
``reproduction`` is a module's own mark (a whole ``bmoe reproduce`` run). ``slow`` is any of them,
subprocess included, plus what a test marks slow itself; ``witness`` keeps a test that uses one of them in
the fast tier on purpose, as the cheap witness of what the slow tests prove. ``python -m pytest -m "not
slow"`` is the fast tier (docs/contributing.md).

The guard fails a fast-tier test whose set-up and call take more than ``BMOE_FAST_TEST_LIMIT_S`` seconds of
CPU time (this process's and its finished children's; ``FAST_LIMIT_S`` by default, ``witness(seconds=...)`` for
a witness), or more than ``WALL_FACTOR`` times that of wall time (a test that waits); ``0`` turns it off.
This module knows which helpers start what; it must not know any test by name.
"""

from __future__ import annotations

import functools
import os
import resource
import time
import types
from collections.abc import Callable, Iterator
from typing import Any

import pytest

# CPU time, not wall time: on a 2-core machine shared with other runs (CI, other worktrees; load 5-10 was seen
# while this was written) wall time swings 2-5x and a wall-time guard fails honest tests by chance, while CPU
# time stays put. A fast test costs well under a second; 5 s still catches a many-round run or a process
# start that slipped into the fast tier. A test that only waits (a server, a sleep) uses no CPU: the wall-time
# backstop, 6 times the limit, catches it without failing a busy machine's honest tests.
FAST_LIMIT_S = 5.0
WALL_FACTOR = 6
LIMIT_VARIABLE = "BMOE_FAST_TEST_LIMIT_S"

# A `python -m bmoe` that loads torch starts in 2.5-10 s on 2 cores (20 s with other runs on them): a test
# that starts one is slow; the "one line, exit 2" tests run the command in process (tests/cli/in_process.py).
SLOW_BECAUSE = ("cluster", "engines", "browser", "reproduction", "subprocess")


@functools.cache
def _starters() -> dict[str, tuple[object, ...]]:
    """What each marker's tests call to start the thing (imported here, so a moved helper fails loudly)."""
    from bmoe.ethereum.anvil import Anvil
    from bmoe.storage.ipfs_node import start_node
    from tests.cli.helpers import bmoe
    from tests.explorer.browser import ExplorerProcess, chromium
    from tests.net.cluster import Cluster
    from tests.net.deploy import LocalCluster, run_module
    from tests.net.netns import Topology
    from tests.serve.server_process import ServeProcess

    return {"cluster": (Cluster, LocalCluster, Topology), "engines": (Anvil, start_node), "browser": (chromium,),
            "subprocess": (bmoe, run_module, ExplorerProcess, ServeProcess)}


def _codes(code: types.CodeType) -> Iterator[types.CodeType]:
    yield code
    for constant in code.co_consts:
        if isinstance(constant, types.CodeType):
            yield from _codes(constant)


def _named(function: Callable[..., Any], seen: set[int]) -> Iterator[object]:
    """Every global object ``function``'s code names, and, for functions and classes defined under ``tests``,
    what their code names in turn."""
    function = getattr(function, "__wrapped__", function)
    code, scope = getattr(function, "__code__", None), getattr(function, "__globals__", None)
    if code is None or scope is None or id(function) in seen:
        return
    seen.add(id(function))
    for inner in _codes(code):
        for name in inner.co_names:
            target = scope.get(name)
            if target is None:
                continue
            yield target
            if getattr(target, "__module__", "").startswith("tests."):
                if isinstance(target, type):
                    for member in vars(target).values():
                        yield from _named(member, seen)
                else:
                    yield from _named(target, seen)


def uses_of(item: pytest.Item) -> set[str]:
    """The markers (cluster, engines, browser, subprocess) ``item`` earns by what its test and fixtures call."""
    starters = _starters()
    functions = [getattr(item, "obj", None)]
    info = getattr(item, "_fixtureinfo", None)
    for definitions in (info.name2fixturedefs.values() if info else ()):
        functions.extend(definition.func for definition in definitions)
    seen: set[int] = set()
    named = [target for function in functions if function is not None for target in _named(function, seen)]
    return {marker for marker, objects in starters.items() if any(o is target for o in objects for target in named)}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        for marker in sorted(uses_of(item)):
            item.add_marker(marker)
        if item.get_closest_marker("witness") is None and any(item.get_closest_marker(m) for m in SLOW_BECAUSE):
            item.add_marker("slow")


def limit_of(item: pytest.Item) -> float | None:
    """The guard's limit for ``item`` in seconds, or None where the guard does not apply."""
    if item.get_closest_marker("slow") is not None:
        return None
    limit = float(os.environ.get(LIMIT_VARIABLE, FAST_LIMIT_S))
    if limit <= 0:
        return None
    witness = item.get_closest_marker("witness")
    return float(witness.kwargs.get("seconds", limit)) if witness is not None else limit


def cpu_seconds() -> float:
    """CPU time of this process (every thread) and of its children that have been waited for."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


_STARTED = pytest.StashKey[tuple[float, float]]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    item.stash[_STARTED] = (cpu_seconds(), time.monotonic())
    return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[pytest.TestReport]:
    """A passing fast-tier test fails when its set-up and call took more than its limit."""
    report: pytest.TestReport = yield
    limit = limit_of(item)
    if call.when != "call" or limit is None or not report.passed or _STARTED not in item.stash:
        return report
    cpu, wall = item.stash[_STARTED]
    cpu, wall = cpu_seconds() - cpu, time.monotonic() - wall
    if cpu > limit or wall > WALL_FACTOR * limit:
        report.outcome = "failed"
        report.longrepr = (f"{item.nodeid} took {cpu:.1f} s of CPU, {wall:.1f} s of wall time in the fast tier "
                           f"(limits {limit:g} s and {WALL_FACTOR * limit:g} s): mark it slow (@pytest.mark.slow) "
                           f"or make it cheaper (docs/contributing.md); {LIMIT_VARIABLE}=0 turns this guard off")
    return report
