"""The tiny trained run every serve test serves (built once per test process), torch on one thread in the tests'
own process (as tests/lm's conftest does)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.lm.tiny_lm import one_thread
from tests.serve.server_process import tiny_run


@pytest.fixture(scope="session")
def tiny_run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    with one_thread():
        return tiny_run(tmp_path_factory.mktemp("serve") / "tiny")


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    with one_thread():
        yield
