"""A process killed while replacing its head anchor leaves the temporary file of the write; the next writer that opens
the chain store with that anchor removes it (the anchor itself is always whole: written in one rename)."""

from __future__ import annotations

from pathlib import Path

from bmoe.ledger.chainstore import ChainStore


def test_opening_with_the_anchor_removes_a_killed_writers_temporary_file(tmp_path: Path) -> None:
    anchor = tmp_path / "head.json"  # absent: nothing sealed yet
    torn = [tmp_path / ".head.json.ca5adc1d.tmp", tmp_path / ".head.json.k2j4h1x9"]
    for path in torn:
        path.write_bytes(b'{"height": 3')  # a write cut short
    other = tmp_path / ".metrics.json.abc.tmp"
    other.write_bytes(b"")
    with ChainStore(tmp_path / "chain.sqlite", readonly=False, anchor=anchor):
        pass
    assert not any(path.exists() for path in torn)
    assert other.exists()  # another file's temporary is not the anchor's


def test_a_reader_removes_nothing(tmp_path: Path) -> None:
    with ChainStore(tmp_path / "chain.sqlite"):
        pass
    torn = tmp_path / ".head.json.ca5adc1d.tmp"
    torn.write_bytes(b"{")
    with ChainStore(tmp_path / "chain.sqlite", readonly=True, anchor=tmp_path / "head.json"):
        pass
    assert torn.exists()
