"""Rendezvous placement and node URLs; the enrolment file."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from bmoe.net.enrolment import load_enrolment, save_enrolment
from bmoe.net.errors import EnrolmentError
from bmoe.net.store.placement import normalize_url, rendezvous_order, responsible_nodes
from bmoe.storage import cid_of
from tests.net.cluster import identity

NODES = [f"http://127.0.0.1:{8100 + i}" for i in range(4)]
CIDS = [cid_of(f"blob {i}".encode()) for i in range(400)]


def test_order_is_deterministic_and_independent_of_listing_order() -> None:
    for cid in CIDS[:20]:
        assert rendezvous_order(cid, NODES) == rendezvous_order(cid, reversed(NODES))
        assert sorted(rendezvous_order(cid, NODES)) == sorted(NODES)
    # a fixed vector, so any other implementation can check itself against this one
    assert rendezvous_order(cid_of(b"hello world\n"), NODES) == [NODES[3], NODES[2], NODES[1], NODES[0]]


def test_load_is_spread_and_a_removed_node_moves_only_its_own_blobs() -> None:
    firsts = Counter(rendezvous_order(cid, NODES)[0] for cid in CIDS)
    assert all(60 <= firsts[node] <= 140 for node in NODES), firsts  # 100 expected each
    gone = NODES[0]
    for cid in CIDS:
        before = responsible_nodes(cid, NODES, 2)
        after = responsible_nodes(cid, NODES[1:], 2)
        kept = [node for node in before if node != gone]
        assert after[: len(kept)] == kept  # survivors keep their blobs; only the lost slot is refilled


@pytest.mark.parametrize("given, canonical", [
    ("http://127.0.0.1:8101", "http://127.0.0.1:8101"),
    ("http://127.0.0.1:8101/", "http://127.0.0.1:8101"),
    ("HTTP://LocalHost:80", "http://localhost:80"),
    ("http://example.org", "http://example.org:80"),
    ("https://example.org", "https://example.org:443"),
    ("http://[::1]:9000", "http://[::1]:9000"),
])
def test_normalize_url(given: str, canonical: str) -> None:
    assert normalize_url(given) == canonical


@pytest.mark.parametrize("bad", ["ftp://x:1", "http://x:1/path", "http://x:1?q=1", "127.0.0.1:8101", "http://"])
def test_bad_urls_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="invalid node URL"):
        normalize_url(bad)


def test_enrolment_round_trip(tmp_path: Path) -> None:
    entries = {"node-a": identity("node-a").address, "client": identity("client").address}
    save_enrolment(tmp_path / "e.json", entries)
    assert load_enrolment(tmp_path / "e.json") == dict(sorted(entries.items()))


@pytest.mark.parametrize("content, needle", [
    ('{"a": ', "cannot read enrolment file"),
    ("not json", "address of 'not' must be 64 lower-case hex"),  # read as a NAME ADDRESS line
    ("[]", "line 1: expected NAME ADDRESS"),
    ("a " + "a" * 64 + "\na " + "b" * 64, "line 2: 'a' is enrolled twice"),
    ('{"a": "XYZ"}', "must be 64 lower-case hex"),
    (json.dumps({"": "a" * 64}), "non-empty"),
    (json.dumps({"a": "a" * 64, "b": "a" * 64}), "same address"),
])
def test_bad_enrolment_files(tmp_path: Path, content: str, needle: str) -> None:
    path = tmp_path / "e.json"
    path.write_text(content)
    with pytest.raises(EnrolmentError, match=needle) as info:
        load_enrolment(path)
    assert "\n" not in str(info.value)
    with pytest.raises(EnrolmentError, match="cannot read"):
        load_enrolment(tmp_path / "missing.json")
