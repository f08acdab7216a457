"""Content identifiers exactly as ``ipfs add --cid-version 1`` (kubo defaults) computes them.

Owns the mapping bytes -> CID and the DAG blocks behind it:

* a blob of at most ``CHUNK_SIZE`` (256 KiB) bytes, the empty blob included, is a single
  raw leaf: CIDv1, codec ``raw`` (0x55), sha2-256;
* a larger blob is cut into ``CHUNK_SIZE`` raw-leaf chunks joined by a balanced UnixFS
  ``dag-pb`` tree with at most ``MAX_LINKS`` (174) links per node; the root is CIDv1, codec
  ``dag-pb`` (0x70).

The ``dag-pb`` / UnixFS protobufs are encoded by hand in canonical form (links before data,
empty link names written, Tsize = cumulative serialized size of the linked subtree). CIDs,
multihashes and multibase text come from the ``multiformats`` library; text form is base32
(``b...``). Conformance is checked against vectors from the JS reference importer
(``tests/storage/ipfs_vectors.json``).
"""

from __future__ import annotations

import base64
import functools
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from multiformats import CID, multihash

from bmoe.hash_memo import IdentityMemo
from bmoe.storage.errors import InvalidCID

CHUNK_SIZE = 262144
"""Bytes per leaf chunk (kubo's default ``size-262144`` chunker)."""

MAX_LINKS = 174
"""Most links per internal node of the balanced layout (kubo's default)."""

RAW_CODEC = "raw"
DAG_PB_CODEC = "dag-pb"
_HASH = "sha2-256"
_BASE = "base32"
_UNIXFS_FILE = 2

BlockSink = Callable[[str, bytes], None]


@dataclass(frozen=True, slots=True)
class _BinaryCID:
    """A CIDv1 with a sha2-256 multihash, in binary form, as this module builds them.

    Encoding our own CIDs is on the hot path (every stored object, every verification), and the
    ``multiformats`` objects validate types at run time (~1 ms per CID). The binary layout is
    fixed (version 0x01, the codec's varint, multihash 0x12 0x20 + digest), so it is written here
    directly; ``test_storage_cid`` checks it against ``multiformats`` for both codecs.
    """

    raw: bytes

    def __bytes__(self) -> bytes:
        return self.raw

    def __str__(self) -> str:
        return "b" + base64.b32encode(self.raw).decode("ascii").lower().rstrip("=")


_CODEC_PREFIX = {"raw": b"\x01\x55\x12\x20", "dag-pb": b"\x01\x70\x12\x20"}


@dataclass(frozen=True, slots=True)
class _Node:
    """A built DAG node as a parent link sees it."""

    cid: _BinaryCID
    tsize: int  # cumulative serialized size of the subtree rooted here
    filesize: int  # file bytes covered by the subtree


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field_bytes(field: int, payload: bytes) -> bytes:
    return _varint(field << 3 | 2) + _varint(len(payload)) + payload


def _field_varint(field: int, value: int) -> bytes:
    return _varint(field << 3) + _varint(value)


def _make_cid(codec: str, block: bytes | memoryview) -> _BinaryCID:
    return _BinaryCID(_CODEC_PREFIX[codec] + hashlib.sha256(block).digest())


def reference_cid(codec: str, block: bytes) -> str:
    """The same CID text built with ``multiformats`` objects (the slow reference for tests)."""
    digest = hashlib.sha256(block).digest()
    return str(CID(_BASE, 1, codec, multihash.wrap(digest, _HASH)))


def _unixfs_file_data(filesize: int, blocksizes: list[int]) -> bytes:
    """UnixFS ``Data`` message: Type(1)=File, filesize(3), blocksizes(4, repeated, unpacked)."""
    parts = [_field_varint(1, _UNIXFS_FILE), _field_varint(3, filesize)]
    parts.extend(_field_varint(4, size) for size in blocksizes)
    return b"".join(parts)


def _pb_link(child: _Node) -> bytes:
    """``PBLink``: Hash(1), Name(2) written as the empty string, Tsize(3)."""
    return _field_bytes(1, bytes(child.cid)) + _field_bytes(2, b"") + _field_varint(3, child.tsize)


def _pb_node(children: list[_Node], data: bytes) -> bytes:
    """``PBNode`` in canonical dag-pb order: every Links(2) entry, then Data(1)."""
    links = b"".join(_field_bytes(2, _pb_link(child)) for child in children)
    return links + _field_bytes(1, data)


def _parent(children: list[_Node], sink: BlockSink | None) -> _Node:
    sizes = [child.filesize for child in children]
    filesize = sum(sizes)
    block = _pb_node(children, _unixfs_file_data(filesize, sizes))
    cid = _make_cid(DAG_PB_CODEC, block)
    if sink is not None:
        sink(str(cid), block)
    return _Node(cid, len(block) + sum(child.tsize for child in children), filesize)


def _build(data: bytes, chunk_size: int, max_links: int, sink: BlockSink | None) -> _BinaryCID:
    """Build the DAG of ``data``, pass each block to ``sink`` (root last), return the root CID."""
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be positive, got {chunk_size}")
    if max_links < 2:
        raise ValueError(f"max_links must be at least 2, got {max_links}")
    view = memoryview(data).cast("B")
    if len(view) <= chunk_size:
        cid = _make_cid(RAW_CODEC, view)
        if sink is not None:
            sink(str(cid), bytes(view))
        return cid
    level: list[_Node] = []
    for start in range(0, len(view), chunk_size):
        chunk = view[start : start + chunk_size]
        cid = _make_cid(RAW_CODEC, chunk)
        if sink is not None:
            sink(str(cid), bytes(chunk))
        level.append(_Node(cid, len(chunk), len(chunk)))
    # Balanced layout: group each level into parents of at most max_links children until
    # one root is left. A ragged last group still gets its own parent at every level, as
    # kubo's balanced builder does.
    while len(level) > 1:
        level = [_parent(level[i : i + max_links], sink) for i in range(0, len(level), max_links)]
    return level[0].cid


def cid_of(data: bytes, *, chunk_size: int = CHUNK_SIZE, max_links: int = MAX_LINKS) -> str:
    """The CIDv1 (base32) that ``ipfs add --cid-version 1`` gives ``data``.

    ``chunk_size`` and ``max_links`` default to kubo's values and exist for tests of deep trees. With the
    defaults, the CID of a ``bytes`` object hashed recently is remembered (:mod:`bmoe.hash_memo`): the
    same object encoded, stored and read back in one process is hashed once.
    """
    if chunk_size == CHUNK_SIZE and max_links == MAX_LINKS:
        return _default_cid(data)
    return str(_build(data, chunk_size, max_links, None))


_default_cid = IdentityMemo(lambda data: str(_build(data, CHUNK_SIZE, MAX_LINKS, None)))


def sha256_hex_of(data: bytes) -> str:
    """The SHA-256 (hex) of ``data``. A blob of one chunk is a raw leaf, whose CID's multihash is exactly this
    digest: it is read from :func:`cid_of` (remembered for the same bytes object), so a small object committed by
    its digest and stored by its CID (an expert's result) is hashed once, not twice."""
    if type(data) is not bytes or len(data) > CHUNK_SIZE:
        return hashlib.sha256(data).hexdigest()
    body = _default_cid(data)[1:].upper()  # "b" + base32 of prefix 0x01 0x55 0x12 0x20 + the 32-byte digest
    return base64.b32decode(body + "=" * (-len(body) % 8))[len(_CODEC_PREFIX[RAW_CODEC]):].hex()


class Readable(Protocol):
    """What :func:`cid_of_stream` reads from: a binary file or anything with ``readinto``."""

    def readinto(self, buffer: bytearray | memoryview, /) -> int | None: ...


def _read_chunk(stream: Readable, chunk_size: int) -> bytes:
    """The next ``chunk_size`` bytes of ``stream`` (fewer only at its end); short reads are retried."""
    buffer = bytearray(chunk_size)
    view = memoryview(buffer)
    filled = 0
    while filled < chunk_size:
        got = stream.readinto(view[filled:])
        if not got:
            break
        filled += got
    return bytes(view[:filled])


def cid_of_stream(stream: Readable, *, chunk_size: int = CHUNK_SIZE, max_links: int = MAX_LINKS) -> str:
    """:func:`cid_of` of everything ``stream`` yields, read ``chunk_size`` bytes at a time.

    Memory stays bounded whatever the length: one chunk, plus fewer than ``max_links`` pending
    nodes per tree level. Each level is grouped into parents as soon as it holds ``max_links``
    nodes, which are exactly the groups the level-by-level build of :func:`_build` forms; at the
    end the ragged groups are closed from the bottom up. ``test_storage_cid_stream`` keeps the two
    equal around the chunk and link boundaries.
    """
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be positive, got {chunk_size}")
    if max_links < 2:
        raise ValueError(f"max_links must be at least 2, got {max_links}")
    levels: list[list[_Node]] = [[]]

    def push(level: int, node: _Node) -> None:
        if level == len(levels):
            levels.append([])
        levels[level].append(node)
        if len(levels[level]) == max_links:
            group, levels[level] = levels[level], []
            push(level + 1, _parent(group, None))

    chunk = _read_chunk(stream, chunk_size)
    while True:
        following = _read_chunk(stream, chunk_size) if len(chunk) == chunk_size else b""
        if not following and not levels[0] and len(levels) == 1:
            return str(_make_cid(RAW_CODEC, chunk))  # the whole blob is one chunk (or empty)
        push(0, _Node(_make_cid(RAW_CODEC, chunk), len(chunk), len(chunk)))
        if not following:
            break
        chunk = following
    level = 0
    while True:
        above = any(levels[level + 1 :])
        if len(levels[level]) == 1 and not above:
            return str(levels[level][0].cid)
        if levels[level]:
            group, levels[level] = levels[level], []
            push(level + 1, _parent(group, None))
        level += 1


def dag_blocks(
    data: bytes, *, chunk_size: int = CHUNK_SIZE, max_links: int = MAX_LINKS
) -> list[tuple[str, bytes]]:
    """Every distinct block ``(cid, block bytes)`` of the DAG of ``data``, root last.

    Leaves come first in file order, then each level of internal nodes; a block that occurs
    several times (identical chunks or subtrees) is listed once, at its first occurrence.
    """
    blocks: dict[str, bytes] = {}

    def sink(cid: str, block: bytes) -> None:
        blocks.setdefault(cid, block)

    root = str(_build(data, chunk_size, max_links, sink))
    out = [(cid, block) for cid, block in blocks.items() if cid != root]
    out.append((root, blocks[root]))
    return out


def parse_cid(text: str) -> str:
    """Validate ``text`` as a CID of this storage layer and return its canonical (base32) form.

    Memoised: parsing goes through ``multiformats`` once per distinct text.
    """
    if not isinstance(text, str):
        raise InvalidCID(text, f"expected a str, got {type(text).__name__}")
    if _is_canonical(text):
        return text
    return _parse_cid(text)


_CANONICAL_LENGTH = 59  # "b" + base32 of 36 bytes (version, codec, 0x12, 0x20, 32-byte digest)


@functools.lru_cache(maxsize=1 << 16)
def _is_canonical(text: str) -> bool:
    """Whether ``text`` already is a canonical CID of ours (lowercase base32, raw/dag-pb, sha2-256).
    Memoised: a round names the same CIDs many times."""
    if len(text) != _CANONICAL_LENGTH or text[0] != "b" or not text.islower():
        return False
    try:
        body = text[1:].upper()
        raw = base64.b32decode(body + "=" * (-len(body) % 8))
    except ValueError:
        return False
    return len(raw) == 36 and raw[:4] in _CODEC_PREFIX.values() and str(_BinaryCID(raw)) == text


@functools.lru_cache(maxsize=1 << 16)
def _parse_cid(text: str) -> str:
    """Validate ``text`` as a CID of this storage layer and return its canonical (base32) form.

    Accepted: CIDv1 in any multibase, codec ``raw`` or ``dag-pb``, sha2-256 multihash with a
    32-byte digest. Anything else raises :class:`InvalidCID` saying why.
    """
    if not isinstance(text, str):
        raise InvalidCID(text, f"expected a str, got {type(text).__name__}")
    stripped = text.strip()
    if not stripped:
        raise InvalidCID(text, "empty string")
    if stripped != text:
        raise InvalidCID(text, "leading or trailing whitespace")
    try:
        cid = CID.decode(text)
    except Exception as exc:  # multiformats raises KeyError/ValueError/binascii subclasses
        raise InvalidCID(text, f"not a decodable multibase CID ({exc})") from exc
    if cid.version != 1:
        raise InvalidCID(text, f"CIDv{cid.version} is not supported; expected CIDv1")
    if cid.codec.name not in (RAW_CODEC, DAG_PB_CODEC):
        raise InvalidCID(text, f"codec {cid.codec.name!r} is not supported; expected raw or dag-pb")
    if cid.hashfun.name != _HASH:
        raise InvalidCID(text, f"hash {cid.hashfun.name!r} is not supported; expected {_HASH}")
    if len(cid.raw_digest) != hashlib.sha256().digest_size:
        raise InvalidCID(text, f"digest has {len(cid.raw_digest)} bytes; expected 32")
    return str(cid.set(base=_BASE))


def cid_bytes(cid: str) -> bytes:
    """The binary form of a CID of this storage layer (what CAR files and dag-pb links hold)."""
    body = parse_cid(cid)[1:].upper()
    return base64.b32decode(body + "=" * (-len(body) % 8))


def cid_from_bytes(raw: bytes) -> str:
    """The canonical text of a binary CID; :class:`InvalidCID` unless it is a CIDv1 raw/dag-pb sha2-256 one."""
    if len(raw) != 36 or raw[:4] not in _CODEC_PREFIX.values():
        return parse_cid("b" + base64.b32encode(raw).decode("ascii").lower().rstrip("="))  # raises, saying why
    return str(_BinaryCID(bytes(raw)))


def verify_cid(cid: str, data: bytes) -> bool:
    """Whether ``data`` is exactly the content ``cid`` addresses (i.e. ``cid_of(data)``).

    Raises :class:`InvalidCID` if ``cid`` itself is malformed.
    """
    expected = parse_cid(cid)
    is_raw = expected.startswith("bafk")  # base32 of the prefix 0x01 0x55: a raw-codec CIDv1
    if is_raw != (len(data) <= CHUNK_SIZE):  # a raw leaf addresses exactly one chunk; skip hashing
        return False
    return cid_of(data) == expected
