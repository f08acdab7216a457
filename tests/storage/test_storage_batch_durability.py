"""``DirectoryStore(batch=True)``: objects are written atomically at once and made durable together by
``flush()``, which the ledger node runs before it persists every block (so nothing a sealed block names
can be lost to a crash), and per-object fsyncs are gone from a run directory's rounds."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bmoe.data import Dataset
from bmoe.ledger.node import LedgerNode
from bmoe.run.session import STORE_DIR, Session
from bmoe.storage import directory
from bmoe.storage.directory import DirectoryStore
from tests.conftest import small_config


def test_a_batched_object_is_readable_at_once_and_flush_covers_what_was_written(tmp_path: Path) -> None:
    store = DirectoryStore(tmp_path / "s", batch=True)
    cids = [store.put(f"object {i}".encode()) for i in range(5)]
    assert [store.get(cid) for cid in cids] == [f"object {i}".encode() for i in range(5)]
    assert store.flush() >= 5  # the files and their shard directories
    assert store.flush() == 0  # nothing new


def test_without_syncfs_the_flush_fsyncs_every_file_and_directory_it_wrote(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    synced: list[int] = []
    real = os.fsync
    monkeypatch.setattr(directory, "_syncfs", lambda path: False)
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real(fd))[1])
    store = DirectoryStore(tmp_path / "s", batch=True)
    for i in range(3):
        store.put(f"object {i}".encode())
    assert synced == []  # nothing synced while writing
    covered = store.flush()
    assert len(synced) == covered >= 3


def test_per_object_durability_is_still_the_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    synced: list[int] = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real(fd))[1])
    DirectoryStore(tmp_path / "s").put(b"durable as written")
    assert len(synced) >= 2  # the file and its shard directory


def test_the_node_flushes_the_store_before_it_persists_each_block(tiny_data: Dataset, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    order: list[tuple[str, int]] = []
    flush, persist = DirectoryStore.flush, LedgerNode.persist

    def recording_flush(self: DirectoryStore) -> int:
        order.append(("flush", len(self._unsynced)))
        return flush(self)

    def recording_persist(self: LedgerNode, block: object) -> None:
        persist(self, block)  # type: ignore[arg-type]
        order.append(("block", block.header.height))  # type: ignore[attr-defined]

    monkeypatch.setattr(DirectoryStore, "flush", recording_flush)
    monkeypatch.setattr(LedgerNode, "persist", recording_persist)
    with Session(small_config(rounds=3, malicious_ratio=0.4), dataset=tiny_data, run_dir=tmp_path / "run") as session:
        assert isinstance(session.store, DirectoryStore) and session.store.batch
        session.train()
    blocks = [i for i, (what, _) in enumerate(order) if what == "block"]
    assert len(blocks) == 4  # the genesis and three rounds
    previous = -1
    for index in blocks:  # each block right after a flush, its objects flushed since the previous block
        flushed = [pending for what, pending in order[previous + 1:index] if what == "flush"]
        assert order[index - 1][0] == "flush" and any(pending > 0 for pending in flushed), order
        previous = index
    assert (tmp_path / "run" / STORE_DIR).is_dir()
