"""Hashes remembered by object identity (``bmoe.hash_memo``): the same bytes object is hashed once, and
nothing else is ever answered from the memo: other bytes, equal bytes in another object, mutable buffers."""

from __future__ import annotations

import hashlib

import pytest

from bmoe.hash_memo import IdentityMemo
from bmoe.storage import MemoryStore, cid_of, dag_blocks
from bmoe.storage.cid import reference_cid
from bmoe.storage.errors import CorruptObject
from bmoe.verify.comparison import EXACT


def _counting() -> tuple[IdentityMemo[str], list[bytes]]:
    calls: list[bytes] = []

    def digest(data: bytes) -> str:
        calls.append(data)
        return hashlib.sha256(data).hexdigest()

    return IdentityMemo(digest, max_bytes=1 << 20, min_bytes=16), calls


def test_the_same_object_is_hashed_once() -> None:
    memo, calls = _counting()
    data = bytes(range(256)) * 4
    assert memo(data) == memo(data) == hashlib.sha256(data).hexdigest()
    assert len(calls) == 1 and memo.hits == 1


def test_other_bytes_and_equal_bytes_in_another_object_are_hashed() -> None:
    memo, calls = _counting()
    data = b"a" * 1000
    other = b"b" * 1000
    twin = bytes(bytearray(data))  # equal content, another object
    assert twin is not data
    assert memo(data) == hashlib.sha256(data).hexdigest()
    assert memo(other) == hashlib.sha256(other).hexdigest() != memo(data)
    assert memo(twin) == memo(data)
    assert len(calls) == 3


def test_mutable_buffers_and_small_objects_are_never_remembered() -> None:
    memo, calls = _counting()
    buffer = bytearray(b"x" * 1000)
    first = memo(buffer)
    buffer[0] = ord("y")
    assert memo(buffer) == hashlib.sha256(bytes(buffer)).hexdigest() != first
    small = b"tiny"
    memo(small)
    memo(small)
    assert len(calls) == 4 and memo.hits == 0


def test_the_budget_evicts_the_least_recently_used() -> None:
    memo, calls = _counting()
    memo.max_bytes = 3000
    blobs = [bytes([i]) * 1000 for i in range(4)]
    for blob in blobs:
        memo(blob)
    memo(blobs[0])  # evicted by the fourth: hashed again
    memo(blobs[3])  # kept
    assert len(calls) == 5


def test_cid_and_digest_of_one_object_match_a_fresh_computation() -> None:
    data = bytes(range(256)) * 2048  # 512 KiB: a dag-pb root over raw leaves
    first = cid_of(data)
    assert cid_of(data) == first == cid_of(bytes(bytearray(data)))  # remembered, and a new object hashed afresh
    root_cid, root_block = dag_blocks(data)[-1]
    assert reference_cid("dag-pb", root_block) == root_cid == first
    assert EXACT.key(data) == EXACT.key(data) == hashlib.sha256(data).hexdigest()


def test_a_memory_store_still_catches_bytes_that_are_not_the_ones_it_hashed() -> None:
    store = MemoryStore()
    good = bytes(range(256)) * 64
    cid = store.put(good)
    assert store.get(cid) is good
    store._blobs[cid] = bytes(bytearray(good[:-1] + b"\0"))  # corrupted behind the store's back
    with pytest.raises(CorruptObject):
        store.get(cid)
