"""Reading a DAG back: the object its blocks encode, the inverse of :func:`~bmoe.storage.cid.dag_blocks`.

Owns decoding the links of a ``dag-pb`` node (``PBNode.Links[].Hash``, in order) and walking a DAG of
raw leaves under ``dag-pb`` parents, as ``ipfs add --cid-version 1`` builds them, into the bytes it
addresses. The decoder is lenient on purpose: :func:`assemble` ends with ``cid_of(object) == root``,
which re-encodes the whole DAG canonically, so any block that is not exactly what bmoe (and kubo)
would build is refused there, with one reason. Bounded before that final check, since a DAG that names
one block many times encodes far more than its blocks: at most ``MAX_DEPTH`` levels, ``MAX_LINKS`` links
per node, ``max_bytes`` of output, a leaf shorter than ``CHUNK_SIZE`` only as the last one (``ipfs add``
cuts full chunks but the last; so no run of empty leaves), as many blocks as ``max_bytes`` of full chunks
need, and a ``deadline`` (``time.monotonic()``).

Must not know: where blocks come from (a CAR file, a node, a dict).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from bmoe.storage.cid import CHUNK_SIZE, MAX_LINKS, cid_from_bytes, cid_of
from bmoe.storage.errors import CorruptObject, InvalidCID

MAX_DEPTH = 32  # a balanced tree of 174 links per node reaches 2**64 bytes well before this
DEFAULT_MAX_BYTES = 1 << 31  # 2 GiB

BlockSource = Callable[[str], bytes]
"""Returns the (already verified) block of a CID; raises :class:`ObjectNotFound` if it has none."""


def _varint(data: bytes, at: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        if at >= len(data) or shift > 63:
            raise ValueError("truncated varint")
        byte = data[at]
        value |= (byte & 0x7F) << shift
        at += 1
        if not byte & 0x80:
            return value, at
        shift += 7


def _fields(data: bytes) -> list[tuple[int, int, bytes | int]]:
    """``(field number, wire type, value)`` of a protobuf message: length-delimited values as bytes."""
    fields: list[tuple[int, int, bytes | int]] = []
    at = 0
    while at < len(data):
        key, at = _varint(data, at)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, at = _varint(data, at)
            fields.append((number, wire, value))
        elif wire == 2:
            length, at = _varint(data, at)
            if at + length > len(data):
                raise ValueError("truncated field")
            fields.append((number, wire, data[at:at + length]))
            at += length
        else:
            raise ValueError(f"wire type {wire} does not occur in dag-pb")
    return fields


def pb_links(block: bytes) -> list[str]:
    """The CIDs a ``dag-pb`` block links to, in order; :class:`ValueError` if it is not a dag-pb node."""
    links = []
    for number, wire, value in _fields(block):
        if number == 2 and wire == 2 and isinstance(value, bytes):
            hashes = [v for n, w, v in _fields(value) if n == 1 and w == 2 and isinstance(v, bytes)]
            if len(hashes) != 1:
                raise ValueError("a link without exactly one Hash")
            links.append(cid_from_bytes(hashes[0]))
    return links


def max_blocks(max_bytes: int) -> int:
    """The most blocks a DAG of ``max_bytes`` bytes in full chunks can have: its leaves and, at most, as many
    nodes (each node links at least one block), plus a path of nodes down to them."""
    leaves = max_bytes // CHUNK_SIZE + 1
    return 2 * leaves + MAX_DEPTH


def assemble(root: str, block_of: BlockSource, max_bytes: int = DEFAULT_MAX_BYTES,
             deadline: float = float("inf")) -> bytes:
    """The object ``root`` addresses, rebuilt from its blocks and checked against ``root``.

    Raises :class:`CorruptObject` when the blocks do not rebuild exactly the object ``root`` names, or
    exceed a bound (see the module), and lets ``block_of``'s :class:`ObjectNotFound` through for a missing
    block.
    """
    out = bytearray()
    budget = max_blocks(max_bytes)
    visited = 0
    short_leaf = False

    def refuse(reason: str) -> CorruptObject:
        return CorruptObject(f"object {root}: {reason}", cid=root)

    def walk(cid: str, depth: int) -> None:
        nonlocal visited, short_leaf
        if depth > MAX_DEPTH:
            raise refuse(f"its DAG is deeper than {MAX_DEPTH} levels")
        visited += 1
        if visited > budget:
            raise refuse(f"its DAG names more than {budget} blocks, more than {max_bytes} bytes need")
        if time.monotonic() > deadline:
            raise refuse("rebuilding it takes longer than allowed")
        block = block_of(cid)
        if cid.startswith("bafk"):  # base32 of 0x01 0x55: a raw leaf, part of the object's bytes
            if short_leaf:
                raise refuse("a leaf follows a leaf shorter than a chunk: not how ipfs add cuts an object")
            short_leaf = len(block) < CHUNK_SIZE
            if len(out) + len(block) > max_bytes:
                raise refuse(f"its DAG encodes more than {max_bytes} bytes")
            out.extend(block)
            return
        try:
            children = pb_links(block)
        except (ValueError, InvalidCID) as err:
            raise refuse(f"block {cid} is not a dag-pb node of raw leaves ({err})") from None
        if len(children) > MAX_LINKS:
            raise refuse(f"block {cid} has {len(children)} links, more than the {MAX_LINKS} of a node")
        for child in children:
            walk(child, depth + 1)

    walk(root, 0)
    data = bytes(out)
    if cid_of(data) != root:
        raise CorruptObject(f"object {root}: its blocks do not rebuild it as ipfs add --cid-version 1 would "
                            f"(another chunking or layout, or UnixFS data inside dag-pb nodes)", cid=root)
    return data

