"""CIDs: conformance with the IPFS reference importer, DAG block consistency, CID parsing."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any

import pytest
from multiformats import CID, multihash

from bmoe.storage import CHUNK_SIZE, MAX_LINKS, InvalidCID, cid_of, dag_blocks, parse_cid, verify_cid

VECTORS_PATH = Path(__file__).with_name("ipfs_vectors.json")
VECTORS: list[dict[str, Any]] = json.loads(VECTORS_PATH.read_text())["vectors"]

EMPTY_RAW_CID = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
HELLO_WORLD_RAW_CID = "bafkreifjjcie6lypi6ny7amxnfftagclbuxndqonfipmb64f2km2devei4"


# --- deterministic inputs, mirroring tools/ipfs_vectors/generate.mjs ------------------------
def generate(gen: dict[str, Any]) -> bytes:
    kind = gen["kind"]
    if kind == "literal":
        return gen["text"].encode("utf-8")
    if kind == "mod251":
        n = gen["n"]
        return (bytes(range(251)) * (n // 251 + 1))[:n]
    if kind == "sha256ctr":
        n, seed = gen["n"], gen["seed"].encode("utf-8")
        count = -(-n // 32)
        return b"".join(hashlib.sha256(seed + i.to_bytes(8, "big")).digest() for i in range(count))[:n]
    raise AssertionError(f"unknown generator {kind}")


# --- a minimal, independent dag-pb / UnixFS decoder ----------------------------------------
def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, pos


def _fields(buf: bytes) -> list[tuple[int, int | bytes]]:
    out: list[tuple[int, int | bytes]] = []
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
            out.append((field, value))
        elif wire == 2:
            length, pos = _varint(buf, pos)
            out.append((field, buf[pos : pos + length]))
            pos += length
        else:
            raise AssertionError(f"unexpected wire type {wire}")
    assert pos == len(buf)
    return out


def decode_pb_node(block: bytes) -> tuple[list[tuple[str, bytes, int]], list[tuple[int, int | bytes]]]:
    """Return ([(child cid, name, tsize)], unixfs fields); asserts canonical field order."""
    fields = _fields(block)
    numbers = [f for f, _ in fields]
    assert numbers == [2] * (len(numbers) - 1) + [1], "dag-pb must be Links* then Data"
    links = []
    for _, link in fields[:-1]:
        assert isinstance(link, bytes)
        parts = _fields(link)
        assert [f for f, _ in parts] == [1, 2, 3]
        cid_bytes, name, tsize = (value for _, value in parts)
        assert isinstance(cid_bytes, bytes) and isinstance(name, bytes) and isinstance(tsize, int)
        links.append((CID.decode(cid_bytes).encode("base32"), name, tsize))
    data = fields[-1][1]
    assert isinstance(data, bytes)
    return links, _fields(data)


def _block_cid(cid: str, block: bytes) -> str:
    codec = CID.decode(cid).codec.name
    return str(CID("base32", 1, codec, multihash.digest(block, "sha2-256")))


# --- conformance vectors -------------------------------------------------------------------
def test_vectors_cover_the_required_shapes() -> None:
    names = {v["name"] for v in VECTORS}
    assert {"empty", "hello_world", "exactly_one_chunk", "one_chunk_plus_one_byte"} <= names
    assert any(v["length"] > 3 * 1024 * 1024 for v in VECTORS if v["chunk_size"] == CHUNK_SIZE)
    assert any(v["length"] > MAX_LINKS * CHUNK_SIZE for v in VECTORS if v["chunk_size"] == CHUNK_SIZE)


@pytest.mark.parametrize("vector", VECTORS, ids=[v["name"] for v in VECTORS])
def test_cid_matches_reference_importer(vector: dict[str, Any]) -> None:
    data = generate(vector["generator"])
    assert len(data) == vector["length"]
    params = {"chunk_size": vector["chunk_size"], "max_links": vector["max_links"]}
    assert cid_of(data, **params) == vector["cid"]
    if vector["chunk_size"] == CHUNK_SIZE and vector["max_links"] == MAX_LINKS:
        assert cid_of(data) == vector["cid"]
        assert verify_cid(vector["cid"], data)


@pytest.mark.parametrize("vector", VECTORS, ids=[v["name"] for v in VECTORS])
def test_dag_blocks_match_reference_importer(vector: dict[str, Any]) -> None:
    data = generate(vector["generator"])
    params = {"chunk_size": vector["chunk_size"], "max_links": vector["max_links"]}
    blocks = dag_blocks(data, **params)
    cids = [cid for cid, _ in blocks]
    assert blocks[-1][0] == vector["cid"] == cid_of(data, **params)
    assert len(set(cids)) == len(cids) == vector["block_count"]
    assert hashlib.sha256("\n".join(sorted(cids)).encode()).hexdigest() == vector["block_cids_sha256"]
    by_cid = dict(blocks)
    for cid, block in blocks:
        assert _block_cid(cid, block) == cid

    pieces: list[bytes] = []

    def walk(cid: str) -> tuple[int, int]:
        """Append the file bytes under ``cid`` to ``pieces``; return (file size, cumulative dag size)."""
        block = by_cid[cid]
        if CID.decode(cid).codec.name == "raw":
            assert len(block) <= vector["chunk_size"]
            pieces.append(block)
            return len(block), len(block)
        links, unixfs = decode_pb_node(block)
        assert 1 <= len(links) <= vector["max_links"]
        assert unixfs[0] == (1, 2)  # Type = File
        assert unixfs[1][0] == 3  # filesize
        blocksizes = [value for field, value in unixfs[2:] if field == 4]
        assert len(blocksizes) == len(links) == len(unixfs) - 2
        filesize, total = 0, len(block)
        for (child, name, tsize), blocksize in zip(links, blocksizes, strict=True):
            assert name == b""
            part_size, size = walk(child)
            assert size == tsize and part_size == blocksize
            filesize += part_size
            total += tsize
        assert unixfs[1][1] == filesize
        return filesize, total

    _, dag_size = walk(vector["cid"])
    assert b"".join(pieces) == data
    assert dag_size == vector["dag_size"]


def test_well_known_published_cids() -> None:
    assert cid_of(b"") == EMPTY_RAW_CID
    assert cid_of(b"hello world\n") == HELLO_WORLD_RAW_CID
    assert dag_blocks(b"") == [(EMPTY_RAW_CID, b"")]


def test_chunk_boundary_switches_codec() -> None:
    assert cid_of(bytes(CHUNK_SIZE)).startswith("bafkrei")
    assert cid_of(bytes(CHUNK_SIZE + 1)).startswith("bafybei")


def test_cid_of_accepts_bytes_like_and_is_stable() -> None:
    data = generate({"kind": "sha256ctr", "seed": "x", "n": 3 * CHUNK_SIZE + 5})
    assert cid_of(data) == cid_of(bytearray(data)) == cid_of(memoryview(data)) == cid_of(data)
    assert cid_of(data) != cid_of(data[:-1])


def test_ten_mib_cid_is_fast() -> None:
    data = generate({"kind": "sha256ctr", "seed": "speed", "n": 10 * 1024 * 1024})
    start = time.perf_counter()
    cid = cid_of(data)
    elapsed = time.perf_counter() - start
    assert cid.startswith("bafybei")
    assert elapsed < 1.0, f"cid_of(10 MiB) took {elapsed:.3f}s"


def test_bad_tree_parameters_rejected() -> None:
    with pytest.raises(ValueError, match="max_links"):
        cid_of(b"abc", chunk_size=1, max_links=1)
    with pytest.raises(ValueError, match="chunk_size"):
        cid_of(b"abc", chunk_size=0)


# --- verify_cid -----------------------------------------------------------------------------
def test_verify_cid_detects_any_change() -> None:
    small = b"hello world\n"
    big = generate({"kind": "mod251", "n": CHUNK_SIZE + 1})
    assert verify_cid(cid_of(small), small)
    assert verify_cid(cid_of(big), big)
    assert not verify_cid(cid_of(small), b"hello world!")
    assert not verify_cid(cid_of(big), big[:-1] + b"\x00")
    assert not verify_cid(cid_of(small), big)
    assert not verify_cid(cid_of(big), small)
    with pytest.raises(InvalidCID):
        verify_cid("not-a-cid", small)


# --- parse_cid ------------------------------------------------------------------------------
def test_parse_cid_normalises_other_encodings() -> None:
    cid = cid_of(b"hello world\n")
    assert parse_cid(cid) == cid
    assert parse_cid(cid.upper()) == cid  # multibase base32upper
    assert parse_cid(CID.decode(cid).encode("base58btc")) == cid
    assert parse_cid(CID.decode(cid).encode("base36")) == cid


def _cid_text(codec: str, hashfun: str, data: bytes = b"x") -> str:
    return str(CID("base32", 1, codec, multihash.digest(data, hashfun)))


MALFORMED = {
    "empty": ("", "empty"),
    "blank": ("   ", "empty"),
    "whitespace": (" " + EMPTY_RAW_CID, "whitespace"),
    "unknown multibase": ("hello", "multibase"),
    "truncated": (EMPTY_RAW_CID[:-5], "decodable"),
    "garbage base32": ("bafy", "decodable"),
    "cidv0": ("QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH", "CIDv0"),
    "dag-cbor codec": (_cid_text("dag-cbor", "sha2-256"), "codec"),
    "sha2-512": (_cid_text("raw", "sha2-512"), "hash"),
    "identity hash": (_cid_text("raw", "identity"), "hash"),
}


@pytest.mark.parametrize("case", MALFORMED, ids=list(MALFORMED))
def test_parse_cid_rejects_malformed(case: str) -> None:
    text, reason = MALFORMED[case]
    with pytest.raises(InvalidCID, match=reason) as info:
        parse_cid(text)
    assert isinstance(info.value, ValueError)
    assert repr(text) in str(info.value)


@pytest.mark.parametrize("value", [None, 42, EMPTY_RAW_CID.encode()])
def test_parse_cid_rejects_non_strings(value: object) -> None:
    with pytest.raises(InvalidCID, match="expected a str"):
        parse_cid(value)  # type: ignore[arg-type]


@pytest.mark.parametrize("size", [0, 1, 5000, CHUNK_SIZE, CHUNK_SIZE + 1, 3 * CHUNK_SIZE + 7])
def test_fast_cid_encoding_equals_multiformats_reference(size: int) -> None:
    """The hand-laid binary CID must equal what the multiformats objects encode."""
    from bmoe.storage.cid import reference_cid

    data = bytes(i % 251 for i in range(size))
    blocks = dag_blocks(data)
    for cid, block in blocks:
        codec = "raw" if cid.startswith("bafk") else "dag-pb"
        assert cid == reference_cid(codec, block)
        assert CID.decode(cid).codec.name == codec


def test_canonical_fast_path_accepts_ours_and_defers_the_rest() -> None:
    from bmoe.storage.cid import _is_canonical

    for data in (b"", b"x" * 10, b"y" * (CHUNK_SIZE + 1)):
        assert _is_canonical(cid_of(data))
    raw = cid_of(b"abc")
    assert not _is_canonical(raw.upper())
    import base64

    cbor = "b" + base64.b32encode(b"\x01\x71\x12\x20" + bytes(32)).decode().lower().rstrip("=")
    assert not _is_canonical(cbor)  # dag-cbor: not a codec of this store
    assert not _is_canonical("b" + "a" * 58)
