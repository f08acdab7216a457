"""Every language-model test runs torch on one thread: the tiny models gain nothing from a second, and on a
shared 2-core machine a second thread's spinning multiplies a test's CPU time (the fast tier's guard counts it)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.lm.tiny_lm import one_thread


@pytest.fixture(autouse=True)
def torch_on_one_thread() -> Iterator[None]:
    with one_thread():
        yield
