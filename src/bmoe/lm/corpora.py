"""Owns the names of the corpora a language model trains on, and loading one by name.

This module must not know how a corpus is fetched or split (``lm/corpus.py``, ``lm/brown.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from bmoe.data.errors import DataError

from .brown import load_brown
from .corpus import Corpus, load_shakespeare

CORPORA: dict[str, Callable[..., Corpus]] = {"shakespeare": load_shakespeare, "brown": load_brown}  # first: default


def load_corpus(name: str, cache_dir: Path | str | None = None, archive: Path | None = None) -> Corpus:
    """The corpus ``name`` (one of :data:`CORPORA`), fetched and checked or found in the cache."""
    if name not in CORPORA:
        raise DataError(f"unknown corpus {name!r}: choose one of {', '.join(CORPORA)}")
    return CORPORA[name](cache_dir, archive=archive)
