"""CAR v1 files (Content-Addressable aRchives, the format of ``ipfs dag export`` / ``dag import``) of a store's objects.

Owns the format and moving objects between a ``BlobStore`` and a CAR file:

* the file is ``varint(len(header)) header`` then, per block, ``varint(len(cid) + len(block)) cid block``;
  the header is the DAG-CBOR map ``{"roots": [CID, ...], "version": 1}``, encoded and decoded by the
  ``dag-cbor`` library (strict: canonical key order, CIDs as tag 42);
* :func:`export_objects` writes the given objects as roots and every block of their DAGs
  (:func:`~bmoe.storage.cid.dag_blocks`, each distinct block once), so an IPFS node's ``dag import``
  holds each object under the same CID; the file appears under its name only once complete;
* :func:`check_car` reads a CAR, checks every block against its CID and every root against the
  object its blocks rebuild (:func:`~bmoe.storage.dag.assemble`); a bad CAR raises :class:`InvalidCar`
  (or :class:`CorruptObject`) with one reason. Only then does :func:`import_objects` put the roots'
  objects into a store, so a bad CAR writes nothing.

Blocks are read back by offset from the file, so memory holds one object at a time, not the archive.
Bounded, so a small crafted CAR cannot run without end: at most ``MAX_CAR_BLOCKS`` blocks in the file,
each root rebuilt once, the DAG bounds of :func:`~bmoe.storage.dag.assemble` (depth, links per node,
blocks, bytes per object), ``MAX_IMPORT_BYTES`` over all roots and ``max_seconds`` for the whole check;
past a bound the CAR is refused (:class:`InvalidCar`, one reason), nothing written.
Only CIDv1 ``raw`` / ``dag-pb`` sha2-256 blocks are accepted: the only ones bmoe's objects are made of.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import dag_cbor
from multiformats import CID

from bmoe.storage.cid import _varint, cid_bytes, cid_from_bytes, dag_blocks
from bmoe.storage.dag import DEFAULT_MAX_BYTES, assemble
from bmoe.storage.errors import InvalidCar, InvalidCID, ObjectNotFound
from bmoe.storage.store import BlobStore

MAX_HEADER = 1 << 26  # 64 MiB: 1.5 million roots
MAX_SECTION = 1 << 22  # 4 MiB: bmoe's blocks are at most 256 KiB (a leaf) or ~7 KiB (a node of 174 links)
MAX_CAR_BLOCKS = 1 << 20  # a million blocks: 256 GiB of full chunks, far past MAX_IMPORT_BYTES
MAX_IMPORT_BYTES = 1 << 34  # 16 GiB of objects over all roots (each at most DEFAULT_MAX_BYTES)
MAX_SECONDS = 600.0  # checking a CAR: ten minutes, hashing and rebuilding gigabytes included
_CID_LENGTH = 36  # CIDv1, one-byte codec, sha2-256 multihash


def _read_varint(stream: BinaryIO, where: str) -> int | None:
    """The next unsigned varint of ``stream``; None at a clean end of file, InvalidCar if cut short."""
    value, shift = 0, 0
    while True:
        byte = stream.read(1)
        if not byte:
            if shift == 0:
                return None
            raise InvalidCar(f"{where}: the file ends inside a length")
        value |= (byte[0] & 0x7F) << shift
        if not byte[0] & 0x80:
            return value
        shift += 7
        if shift > 63:
            raise InvalidCar(f"{where}: a length is not a valid varint")


def encode_header(roots: list[str]) -> bytes:
    """The DAG-CBOR header naming ``roots``."""
    return dag_cbor.encode({"roots": [CID.decode(cid_bytes(root)) for root in roots], "version": 1})


def decode_header(data: bytes) -> list[str]:
    """The roots of a CAR v1 header, canonical; InvalidCar saying what is wrong with it."""
    try:
        header = dag_cbor.decode(data)
    except Exception as err:  # dag_cbor raises its own error classes and ValueError subclasses
        reasons = [line for line in str(err).splitlines()  # the library's words, not its byte dumps
                   if line and not line[0].isspace() and not line.startswith(("At byte", "Error while"))]
        raise InvalidCar(f"header: not DAG-CBOR ({reasons[-1] if reasons else type(err).__name__})") from None
    if not isinstance(header, dict):
        raise InvalidCar(f"header: expected a map, got {type(header).__name__}")
    if header.get("version") != 1:
        raise InvalidCar(f"header: version {header.get('version')!r} is not supported (CAR v1 only)")
    roots = header.get("roots")
    if set(header) != {"roots", "version"} or not isinstance(roots, list) or not roots:
        raise InvalidCar("header: expected exactly a non-empty list of roots and version 1")
    canonical = []
    for root in roots:
        if not isinstance(root, CID):
            raise InvalidCar(f"header: root {root!r} is not a CID")
        try:
            canonical.append(cid_from_bytes(bytes(root)))
        except InvalidCID as err:
            raise InvalidCar(f"header: root {root}: {err.reason}") from None
    return canonical


@dataclass(frozen=True)
class CarIndex:
    """A CAR file's roots and where each verified block lies in it (offset, length)."""

    path: Path
    roots: list[str]
    blocks: dict[str, tuple[int, int]]

    def reader(self, handle: BinaryIO) -> BlockReader:
        return BlockReader(self, handle)


@dataclass
class BlockReader:
    """Reads verified blocks of an indexed CAR back by offset (a ``BlockSource`` for ``assemble``)."""

    index: CarIndex
    handle: BinaryIO

    def __call__(self, cid: str) -> bytes:
        try:
            offset, length = self.index.blocks[cid]
        except KeyError:
            raise ObjectNotFound(cid, f"CAR file {self.index.path}") from None
        self.handle.seek(offset)
        block = self.handle.read(length)
        if hashlib.sha256(block).digest() != cid_bytes(cid)[4:]:
            raise InvalidCar(f"block {cid} changed in the file while it was read")
        return block


def index_car(path: Path, deadline: float = float("inf")) -> CarIndex:
    """Read the whole CAR at ``path``, check its header and every block's hash; InvalidCar at the first fault
    (``deadline``: ``time.monotonic()`` past which it gives up)."""
    with open(path, "rb") as handle:
        size = _read_varint(handle, "header")
        if size is None or size == 0:
            raise InvalidCar("the file is empty: no CAR header")
        if size > MAX_HEADER:
            raise InvalidCar(f"header: {size} bytes, more than the {MAX_HEADER} accepted")
        data = handle.read(size)
        if len(data) != size:
            raise InvalidCar("header: the file ends inside it")
        roots = list(dict.fromkeys(decode_header(data)))  # a root named twice is rebuilt once
        blocks: dict[str, tuple[int, int]] = {}
        number = 0
        while (length := _read_varint(handle, f"block {number}")) is not None:
            where = f"block {number} (at byte {handle.tell()})"
            if number >= MAX_CAR_BLOCKS:
                raise InvalidCar(f"{where}: more than the {MAX_CAR_BLOCKS} blocks accepted")
            if time.monotonic() > deadline:
                raise InvalidCar(f"{where}: reading the CAR takes longer than allowed")
            if length > MAX_SECTION:
                raise InvalidCar(f"{where}: {length} bytes, more than the {MAX_SECTION} a bmoe block can have")
            section = handle.read(length)
            if len(section) != length:
                raise InvalidCar(f"{where}: the file ends inside it")
            if length < _CID_LENGTH:
                raise InvalidCar(f"{where}: too short to hold a CIDv1 sha2-256")
            try:
                cid = cid_from_bytes(section[:_CID_LENGTH])
            except InvalidCID as err:
                raise InvalidCar(f"{where}: {err.reason}") from None
            if hashlib.sha256(section[_CID_LENGTH:]).digest() != section[4:_CID_LENGTH]:
                raise InvalidCar(f"{where}: its bytes do not hash to its CID {cid}")
            blocks.setdefault(cid, (handle.tell() - length + _CID_LENGTH, length - _CID_LENGTH))
            number += 1
    return CarIndex(path, roots, blocks)


def write_car(out: BinaryIO, roots: list[str], blocks: Iterable[tuple[str, bytes]]) -> int:
    """Write a CAR v1 of ``roots`` and ``blocks`` to ``out``; how many blocks it holds."""
    header = encode_header(roots)
    out.write(_varint(len(header)) + header)
    count = 0
    for cid, block in blocks:
        raw = cid_bytes(cid)
        out.write(_varint(len(raw) + len(block)) + raw)
        out.write(block)
        count += 1
    return count


def _object_blocks(store: BlobStore, cids: list[str]) -> Iterator[tuple[str, bytes]]:
    """Every distinct block of the objects' DAGs, each object read (verified) from ``store`` in turn."""
    seen: set[str] = set()
    for cid in cids:
        for block_cid, block in dag_blocks(store.get(cid)):
            if block_cid not in seen:
                seen.add(block_cid)
                yield block_cid, block


@contextlib.contextmanager
def _atomic_file(path: Path) -> Iterator[BinaryIO]:
    """A file that appears at ``path`` only if the block completes (temp file beside it, then ``os.replace``)."""
    temp = path.parent / f".{path.name}.{secrets.token_hex(8)}.tmp"
    try:
        with open(temp, "xb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)


def export_objects(store: BlobStore, cids: list[str], path: Path) -> int:
    """Write the objects ``cids`` of ``store`` as one CAR at ``path`` (roots: the objects); its block count."""
    if not cids:
        raise InvalidCar("no objects to export: a CAR needs at least one root")
    with _atomic_file(path) as handle:
        return write_car(handle, cids, _object_blocks(store, cids))


def check_car(path: Path, max_seconds: float = MAX_SECONDS) -> CarIndex:
    """Index the CAR at ``path`` and check that each root's blocks rebuild the object it names, within the
    bounds (see the module) and ``max_seconds``; nothing is written."""
    deadline = time.monotonic() + max_seconds
    index = index_car(path, deadline)
    total = 0
    with open(path, "rb") as handle:
        read = index.reader(handle)
        for root in index.roots:
            total += len(_rebuild(root, read, min(DEFAULT_MAX_BYTES, MAX_IMPORT_BYTES - total), deadline))
    if time.monotonic() > deadline:
        raise InvalidCar(f"checking it took longer than the {max_seconds:g} s allowed")
    return index


def import_objects(index: CarIndex, store: BlobStore) -> list[str]:
    """Put the objects of a checked CAR (:func:`check_car`) into ``store``; returns the roots.

    A block the roots do not reach was checked against its CID and is ignored.
    """
    with open(index.path, "rb") as handle:
        read = index.reader(handle)  # blocks are hashed again as they are read: the file may have changed
        for root in index.roots:
            store.put(_rebuild(root, read))
    return index.roots


def _rebuild(root: str, read: BlockReader, max_bytes: int = DEFAULT_MAX_BYTES,
             deadline: float = float("inf")) -> bytes:
    try:
        return assemble(root, read, max_bytes, deadline)
    except ObjectNotFound as err:
        raise InvalidCar(f"root {root}: block {err.cid} is not in the CAR") from None


__all__ = ["CarIndex", "check_car", "decode_header", "encode_header", "export_objects", "import_objects",
           "index_car", "write_car"]
