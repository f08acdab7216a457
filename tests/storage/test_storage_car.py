"""CAR v1 files of a store's objects: written as `ipfs dag import` reads them, read back block by verified block,
and a bad CAR (a changed byte, a cut, a foreign header, a missing block, another layout) is refused whole."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bmoe.storage import CHUNK_SIZE, CorruptObject, MemoryStore, cid_of, dag_blocks
from bmoe.storage.car import check_car, decode_header, encode_header, export_objects, import_objects, write_car
from bmoe.storage.cid import _varint, cid_bytes
from bmoe.storage.errors import InvalidCar

OBJECTS = [b"", b"small", os.urandom(CHUNK_SIZE), os.urandom(CHUNK_SIZE + 1), os.urandom(3 * CHUNK_SIZE + 7),
           b"\0" * (4 * CHUNK_SIZE)]  # the last one repeats one leaf four times: stored once


@pytest.fixture
def car(tmp_path: Path) -> tuple[Path, MemoryStore, list[str]]:
    store = MemoryStore()
    cids = sorted(store.put(data) for data in OBJECTS)
    path = tmp_path / "objects.car"
    export_objects(store, cids, path)
    return path, store, cids


def test_export_then_import_gives_back_every_object_under_its_cid(car: tuple[Path, MemoryStore, list[str]]) -> None:
    path, store, cids = car
    index = check_car(path)
    assert index.roots == cids
    expected_blocks = {cid for data in OBJECTS for cid, _ in dag_blocks(data)}
    assert set(index.blocks) == expected_blocks  # every DAG block, each once, and nothing else
    copy = MemoryStore()
    assert import_objects(index, copy) == cids
    assert {cid: copy.get(cid) for cid in cids} == {cid: store.get(cid) for cid in cids}


def test_the_header_is_canonical_dag_cbor_with_cid_links() -> None:
    root = cid_of(b"x")
    header = encode_header([root])
    # a2 (map of 2) 65 "roots" 81 (array of 1) d8 2a (tag 42) 58 25 (37 bytes) 00 (identity multibase) + binary CID
    assert header == (bytes.fromhex("a265") + b"roots" + bytes.fromhex("81d82a582500") + cid_bytes(root)
                      + bytes.fromhex("67") + b"version" + bytes.fromhex("01"))
    assert decode_header(header) == [root]


def _refused(path: Path, data: bytes, match: str) -> None:
    path.write_bytes(data)
    with pytest.raises((InvalidCar, CorruptObject), match=match):
        check_car(path)


def test_a_changed_byte_in_a_block_is_refused(car: tuple[Path, MemoryStore, list[str]], tmp_path: Path) -> None:
    path, _, _ = car
    data = bytearray(path.read_bytes())
    data[-100] ^= 1  # inside the last block
    _refused(tmp_path / "bad.car", bytes(data), "do not hash to its CID")


def test_a_cut_file_is_refused(car: tuple[Path, MemoryStore, list[str]], tmp_path: Path) -> None:
    path, _, _ = car
    _refused(tmp_path / "cut.car", path.read_bytes()[:-10], "ends inside it")
    _refused(tmp_path / "empty.car", b"", "empty")


@pytest.mark.parametrize(("header", "match"), [
    (b"\xa1gversion\x02", "version 2 is not supported"),
    (b"\xa2gversion\x01eroots\x80", "canonical order"),  # keys out of DAG-CBOR order
    (b"\xa2eroots\x80gversion\x01", "non-empty list of roots"),
    (b"\xff", "not DAG-CBOR"),
])
def test_a_foreign_header_is_refused(tmp_path: Path, header: bytes, match: str) -> None:
    _refused(tmp_path / "header.car", _varint(len(header)) + header, match)


def test_a_root_whose_block_is_absent_is_refused(tmp_path: Path) -> None:
    data = os.urandom(2 * CHUNK_SIZE)
    blocks = dag_blocks(data)
    path = tmp_path / "partial.car"
    with open(path, "wb") as out:
        write_car(out, [cid_of(data)], blocks[1:])  # the first leaf left out
    with pytest.raises(InvalidCar, match=f"root {cid_of(data)}: block {blocks[0][0]} is not in the CAR"):
        check_car(path)


@pytest.mark.parametrize(("chunking", "match"), [
    ({"chunk_size": 1024}, "a leaf follows a leaf shorter than a chunk"),  # refused as it is walked
    ({"max_links": 2}, "do not rebuild it"),  # full chunks in another tree: refused by the object's CID
])
def test_blocks_that_rebuild_another_layout_are_refused(tmp_path: Path, chunking: dict[str, int], match: str) -> None:
    data = os.urandom(3 * 1024 if "chunk_size" in chunking else 3 * CHUNK_SIZE)
    other = dag_blocks(data, **chunking)  # valid blocks, but not the layout ipfs add --cid-version 1 makes
    path = tmp_path / "layout.car"
    with open(path, "wb") as out:
        write_car(out, [other[-1][0]], other)
    with pytest.raises(CorruptObject, match=match):
        check_car(path)


def test_a_bad_car_writes_nothing(car: tuple[Path, MemoryStore, list[str]], tmp_path: Path) -> None:
    path, _, _ = car
    data = bytearray(path.read_bytes())
    data[-1] ^= 1
    (tmp_path / "bad.car").write_bytes(bytes(data))
    target = MemoryStore()
    with pytest.raises(InvalidCar):
        import_objects(check_car(tmp_path / "bad.car"), target)
    assert len(target) == 0
