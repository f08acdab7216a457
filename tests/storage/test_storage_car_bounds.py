"""A small crafted CAR cannot make ``bmoe import-car`` run without end: a DAG naming its blocks many times (many
links per node, empty leaves), one too deep, too large, a file of too many blocks or a check past its time is
refused with one reason (one line and exit 2 from the command), nothing stored; a real object still imports."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import pytest

from bmoe.storage import CorruptObject, DirectoryStore
from bmoe.storage import car as car_module
from bmoe.storage.car import check_car, export_objects, write_car
from bmoe.storage.cid import CHUNK_SIZE, MAX_LINKS, cid_bytes, cid_from_bytes
from bmoe.storage.dag import MAX_DEPTH, assemble
from bmoe.storage.errors import InvalidCar
from tests.cli.helpers import assert_user_error
from tests.cli.in_process import bmoe_here

RAW, DAG_PB = b"\x01\x55\x12\x20", b"\x01\x70\x12\x20"


def _varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    return bytes(out + bytes([value]))


def block(prefix: bytes, data: bytes) -> tuple[str, bytes]:
    return cid_from_bytes(prefix + hashlib.sha256(data).digest()), data


def node(children: list[str]) -> tuple[str, bytes]:
    """A dag-pb node linking ``children`` in order (no Data, as a crafted node would)."""
    links = b""
    for child in children:
        link = b"\x0a" + _varint(36) + cid_bytes(child)  # PBLink.Hash, field 1
        links += b"\x12" + _varint(len(link)) + link  # PBNode.Links, field 2
    return block(DAG_PB, links)


def tower(leaf: bytes, links: int, levels: int) -> list[tuple[str, bytes]]:
    """``levels`` nodes, each linking the one below ``links`` times, over one ``leaf``: the root last."""
    blocks = [block(RAW, leaf)]
    for _ in range(levels):
        blocks.append(node([blocks[-1][0]] * links))
    return blocks


def save(path: Path, blocks: list[tuple[str, bytes]]) -> Path:
    with open(path, "wb") as handle:
        write_car(handle, [blocks[-1][0]], reversed(blocks))
    return path


def test_the_crafted_car_of_many_links_and_empty_leaves_is_one_line_exit_2_and_stores_nothing(tmp_path: Path) -> None:
    crafted = save(tmp_path / "crafted.car", tower(b"", 1000, 3))  # 10^9 empty leaves from 120 KB
    assert crafted.stat().st_size < 132_000
    store = tmp_path / "store"
    started = time.monotonic()
    result = bmoe_here("import-car", crafted, "--store-dir", store)
    assert_user_error(result, "refused", "1000 links")
    assert time.monotonic() - started < 10
    assert not store.exists()


@pytest.mark.parametrize(("blocks", "needle"), [
    (tower(b"", MAX_LINKS, 4), "a leaf follows a leaf shorter than a chunk"),  # 9 * 10^8 empty leaves
    (tower(b"x", MAX_LINKS, 4), "a leaf follows a leaf shorter than a chunk"),
    (tower(b"x", 1, MAX_DEPTH + 1), f"deeper than {MAX_DEPTH} levels"),
])
def test_dags_that_ipfs_add_never_builds_are_refused_before_they_are_walked(
        tmp_path: Path, blocks: list[tuple[str, bytes]], needle: str) -> None:
    started = time.monotonic()
    with pytest.raises(CorruptObject, match=needle):
        check_car(save(tmp_path / "bad.car", blocks))
    assert time.monotonic() - started < 5


def test_a_dag_of_more_blocks_or_bytes_than_its_bound_is_refused() -> None:
    chains = tower(b"\0" * CHUNK_SIZE, 1, 20)  # a full chunk under 20 nodes of one link
    root = node([chains[-1][0]] * MAX_LINKS)  # 174 x 21 blocks for 174 chunks
    blocks = dict([*chains, root])
    with pytest.raises(CorruptObject, match="names more than 434 blocks"):
        assemble(root[0], blocks.__getitem__, max_bytes=200 * CHUNK_SIZE)
    full = tower(b"\0" * CHUNK_SIZE, 100, 2)  # 10^4 full chunks named by two nodes
    with pytest.raises(CorruptObject, match="more than 100 bytes"):
        assemble(full[-1][0], dict(full).__getitem__, max_bytes=100)


def test_a_car_of_too_many_blocks_or_past_its_time_is_refused(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    store = DirectoryStore(tmp_path / "objects")
    cids = [store.put(bytes([i]) * 10) for i in range(5)]
    car = tmp_path / "objects.car"
    export_objects(store, cids, car)
    assert check_car(car).roots == cids  # within every bound
    with pytest.raises(InvalidCar, match="longer than"):
        check_car(car, max_seconds=-1)
    monkeypatch.setattr(car_module, "MAX_CAR_BLOCKS", 3)
    with pytest.raises(InvalidCar, match="more than the 3 blocks"):
        check_car(car)
