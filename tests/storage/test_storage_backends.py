"""BlobStore backends: round trips, verification on read, tamper detection, persistence, atomicity."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from multiformats import CID

from bmoe.storage import (
    CHUNK_SIZE,
    BlobStore,
    CorruptObject,
    DirectoryStore,
    InvalidCID,
    MemoryStore,
    ObjectNotFound,
    cid_of,
)
from bmoe.storage.directory import shard_of


def random_bytes(n: int, seed: str = "blob") -> bytes:
    count = -(-n // 32)
    return b"".join(hashlib.sha256(f"{seed}{i}".encode()).digest() for i in range(count))[:n]


BLOBS = {
    "empty": b"",
    "small": b"hello world\n",
    "one chunk": random_bytes(CHUNK_SIZE),
    "multi chunk": random_bytes(3 * CHUNK_SIZE + 17),
}


@pytest.fixture(params=["memory", "directory"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> BlobStore:
    if request.param == "memory":
        return MemoryStore()
    return DirectoryStore(tmp_path / "objects")


def tamper(store: BlobStore, cid: str, edit: Callable[[bytes], bytes]) -> None:
    """Corrupt the stored copy of ``cid`` behind the store's back."""
    if isinstance(store, DirectoryStore):
        path = store.path_of(cid)
        path.write_bytes(edit(path.read_bytes()))
    else:
        assert isinstance(store, MemoryStore)
        store._blobs[cid] = edit(store._blobs[cid])


def flip_first_byte(data: bytes) -> bytes:
    return bytes([data[0] ^ 0x01]) + data[1:]


@pytest.mark.parametrize("name", BLOBS)
def test_round_trip(store: BlobStore, name: str) -> None:
    data = BLOBS[name]
    cid = store.put(data)
    assert cid == cid_of(data)
    assert store.has(cid) and cid in store
    assert store.get(cid) == data
    assert store.verify(cid)


def test_put_is_idempotent_and_accepts_bytes_like(store: BlobStore) -> None:
    data = BLOBS["multi chunk"]
    first = store.put(data)
    assert store.put(data) == first
    assert store.put(bytearray(data)) == first
    assert store.put(memoryview(data)) == first
    assert list(store.cids()) == [first]
    assert len(store) == 1
    with pytest.raises(TypeError, match="bytes"):
        store.put("text")  # type: ignore[arg-type]


def test_listing(store: BlobStore) -> None:
    cids = {store.put(data) for data in BLOBS.values()}
    assert list(store.cids()) == sorted(cids)
    assert list(store) == sorted(cids)
    assert len(store) == len(BLOBS)


def test_missing_object(store: BlobStore) -> None:
    cid = cid_of(b"never stored")
    assert not store.has(cid)
    assert cid not in store
    with pytest.raises(ObjectNotFound, match=cid) as info:
        store.get(cid)
    assert info.value.cid == cid
    assert isinstance(info.value, LookupError)
    with pytest.raises(ObjectNotFound, match=cid):
        store.verify(cid)
    assert not store.delete(cid)


def test_delete(store: BlobStore) -> None:
    keep, drop = store.put(b"keep"), store.put(b"drop")
    assert store.delete(drop)
    assert not store.has(drop)
    assert list(store) == [keep]
    with pytest.raises(ObjectNotFound):
        store.get(drop)


@pytest.mark.parametrize("name", ["small", "one chunk", "multi chunk"])
def test_flipped_byte_is_detected(store: BlobStore, name: str) -> None:
    data = BLOBS[name]
    cid = store.put(data)
    other = store.put(b"untouched neighbour")
    tamper(store, cid, flip_first_byte)
    assert store.has(cid)
    assert not store.verify(cid)
    with pytest.raises(CorruptObject, match=cid) as info:
        store.get(cid)
    assert info.value.cid == cid
    assert store.get(other) == b"untouched neighbour"
    # putting the genuine bytes again repairs the object
    assert store.put(data) == cid
    assert store.verify(cid)
    assert store.get(cid) == data


@pytest.mark.parametrize(
    "edit",
    [lambda d: d[:-1], lambda d: d + b"\x00", lambda d: b"", lambda d: b"hello world\n"],
    ids=["truncated", "appended", "emptied", "swapped"],
)
def test_other_tampering_is_detected(store: BlobStore, edit: Callable[[bytes], bytes]) -> None:
    cid = store.put(BLOBS["multi chunk"])
    tamper(store, cid, edit)
    assert not store.verify(cid)
    with pytest.raises(CorruptObject, match=cid):
        store.get(cid)


CIDV0 = "QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH"


@pytest.mark.parametrize("bad", ["", "nope", CIDV0, "../../etc/passwd"])
def test_malformed_cids_are_rejected(store: BlobStore, bad: str) -> None:
    for call in (store.get, store.has, store.verify, store.delete):
        with pytest.raises(InvalidCID):
            call(bad)
    assert bad not in store
    assert 42 not in store


def test_alternative_cid_encodings_address_the_same_object(store: BlobStore) -> None:
    cid = store.put(b"hello world\n")
    assert store.get(cid.upper()) == b"hello world\n"
    assert store.has(CID.decode(cid).encode("base58btc"))


def test_ten_mib_round_trip_is_fast(store: BlobStore) -> None:
    data = random_bytes(10 * 1024 * 1024 + 1, seed="big")
    start = time.perf_counter()
    cid = store.put(data)
    assert store.get(cid) == data
    elapsed = time.perf_counter() - start
    assert elapsed < 2.0, f"put+get of 10 MiB took {elapsed:.3f}s"


# --- DirectoryStore specifics ---------------------------------------------------------------
def test_directory_survives_restart(tmp_path: Path) -> None:
    root = tmp_path / "store"
    first = DirectoryStore(root)
    cids = {name: first.put(data) for name, data in BLOBS.items()}
    del first
    again = DirectoryStore(root)
    assert list(again.cids()) == sorted(cids.values())
    for name, cid in cids.items():
        assert again.has(cid)
        assert again.get(cid) == BLOBS[name]


def test_directory_layout_is_sharded(tmp_path: Path) -> None:
    store = DirectoryStore(str(tmp_path))  # str roots are accepted too
    cid = store.put(b"layout")
    expected = tmp_path / cid[-3:-1] / cid
    assert shard_of(cid) == cid[-3:-1]
    assert store.path_of(cid) == expected
    assert expected.read_bytes() == b"layout"
    assert sorted(p.name for p in tmp_path.iterdir()) == [cid[-3:-1]]


def test_directory_ignores_temp_and_foreign_files(tmp_path: Path) -> None:
    store = DirectoryStore(tmp_path)
    cid = store.put(b"real")
    orphan = cid_of(b"crashed mid-write")
    shard = tmp_path / shard_of(orphan)
    shard.mkdir(exist_ok=True)
    (shard / f".{orphan}.deadbeef.tmp").write_bytes(b"crashed mid")  # what a crash leaves
    (tmp_path / "README").write_text("not an object")
    (tmp_path / shard_of(cid) / "junk").write_bytes(b"junk")
    misplaced = cid_of(b"misplaced")
    wrong_shard = tmp_path / ("aa" if shard_of(misplaced) != "aa" else "bb")
    wrong_shard.mkdir(exist_ok=True)
    (wrong_shard / misplaced).write_bytes(b"misplaced")
    assert list(store) == [cid]
    assert not store.has(orphan)
    with pytest.raises(ObjectNotFound):
        store.get(orphan)


def test_directory_failed_write_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = DirectoryStore(tmp_path)
    data = b"never durable"

    def failing_fsync(fd: int) -> None:
        raise OSError("disk on fire")

    monkeypatch.setattr(os, "fsync", failing_fsync)
    with pytest.raises(OSError, match="disk on fire"):
        store.put(data)
    monkeypatch.undo()
    cid = cid_of(data)
    assert not store.has(cid)
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []
    assert store.put(data) == cid
    assert store.get(cid) == data


def test_directory_write_goes_through_replace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = DirectoryStore(tmp_path)
    seen: list[tuple[str, str]] = []
    real_replace = os.replace

    def spy(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        src_path, dst_path = Path(src), Path(dst)
        assert src_path.read_bytes() == b"atomic"  # complete before it gets its real name
        assert not dst_path.exists()
        seen.append((src_path.name, dst_path.name))
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", spy)
    cid = store.put(b"atomic")
    assert len(seen) == 1
    assert seen[0][0].startswith(f".{cid}.") and seen[0][0].endswith(".tmp")
    assert seen[0][1] == cid


@pytest.mark.parametrize("backend", ["memory", "directory"])
def test_size_of_stored_objects(backend: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from bmoe.storage import DirectoryStore, MemoryStore, ObjectNotFound, cid_of

    store = MemoryStore() if backend == "memory" else DirectoryStore(tmp_path / "s")
    cid = store.put(b"x" * 300_000)
    assert store.size(cid) == 300_000
    with pytest.raises(ObjectNotFound):
        store.size(cid_of(b"absent"))
