"""``cid_of_stream`` reads in chunks and must give exactly ``cid_of`` of the same bytes (a differential test)."""

from __future__ import annotations

import hashlib
import io
import json
import random
from pathlib import Path
from typing import Any

import pytest

from bmoe.storage import CHUNK_SIZE, MAX_LINKS, cid_of, cid_of_stream

VECTORS = json.loads(Path(__file__).with_name("ipfs_vectors.json").read_text())["vectors"]


def pseudo_random(n: int, seed: int = 0) -> bytes:
    """``n`` seeded random bytes: no two chunks equal, so a misplaced chunk changes the CID."""
    return random.Random(seed).randbytes(n)


def generate(gen: dict[str, Any]) -> bytes:
    """The input of a reference vector (as ``tools/ipfs_vectors/generate.mjs`` builds it)."""
    if gen["kind"] == "literal":
        return str(gen["text"]).encode()
    n = int(gen["n"])
    if gen["kind"] == "mod251":
        return (bytes(range(251)) * (n // 251 + 1))[:n]
    seed = str(gen["seed"]).encode()
    return b"".join(hashlib.sha256(seed + i.to_bytes(8, "big")).digest() for i in range(-(-n // 32)))[:n]


class Trickle(io.RawIOBase):
    """A stream that hands out at most ``step`` bytes per read, as pipes and sockets may."""

    def __init__(self, data: bytes, step: int) -> None:
        self.data, self.step, self.at = data, step, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        piece = self.data[self.at : self.at + min(self.step, len(buffer))]
        buffer[: len(piece)] = piece
        self.at += len(piece)
        return len(piece)


@pytest.mark.parametrize("size", [0, 1, CHUNK_SIZE - 1, CHUNK_SIZE, CHUNK_SIZE + 1, 2 * CHUNK_SIZE,
                                  2 * CHUNK_SIZE + 1, MAX_LINKS * CHUNK_SIZE - 1, MAX_LINKS * CHUNK_SIZE,
                                  MAX_LINKS * CHUNK_SIZE + 1, (MAX_LINKS + 1) * CHUNK_SIZE + 3])
def test_streaming_equals_cid_of_around_the_chunk_and_link_boundaries(size: int) -> None:
    data = pseudo_random(size)
    assert cid_of_stream(io.BytesIO(data)) == cid_of(data)


def test_streaming_equals_cid_of_on_every_size_of_small_deep_trees() -> None:
    # chunk 3, 3 links: sizes up to 3 * 3**4 bytes cover trees of 1 to 5 levels, ragged and full
    for size in range(0, 3 * 3**4 + 8):
        data = pseudo_random(size, 1)
        for links in (2, 3):
            assert cid_of_stream(io.BytesIO(data), chunk_size=3, max_links=links) == \
                cid_of(data, chunk_size=3, max_links=links), (size, links)


def test_short_reads_give_the_same_cid() -> None:
    data = pseudo_random(3 * CHUNK_SIZE + 17)
    assert cid_of_stream(Trickle(data, 10_000)) == cid_of(data)


@pytest.mark.parametrize("vector", VECTORS, ids=[v["name"] for v in VECTORS])
def test_streaming_matches_the_reference_importer_vectors(vector: dict[str, Any]) -> None:
    stream = io.BytesIO(generate(vector["generator"]))
    assert cid_of_stream(stream, chunk_size=vector["chunk_size"], max_links=vector["max_links"]) == vector["cid"]


def test_bad_tree_parameters_are_rejected_before_reading() -> None:
    with pytest.raises(ValueError, match="max_links"):
        cid_of_stream(io.BytesIO(b"abc"), chunk_size=1, max_links=1)
    with pytest.raises(ValueError, match="chunk_size"):
        cid_of_stream(io.BytesIO(b"abc"), chunk_size=0)
