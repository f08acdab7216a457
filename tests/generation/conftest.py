"""Torch on one thread in the tests' own process (as tests/lm's and tests/serve's conftests do): on shared cores a
second thread's spin-waits cost CPU time the fast tier's guard counts."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.lm.tiny_lm import one_thread


@pytest.fixture(autouse=True, scope="module")  # module-wide: the modules' fixtures generate on one thread too
def _one_thread() -> Iterator[None]:
    with one_thread():
        yield
