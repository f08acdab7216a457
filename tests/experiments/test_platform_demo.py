"""``bmoe demo --platform``: the fleet placed by memory, the liar slashed and re-placed around, the join and the
leave recorded, the bill adding up, and the chain it leaves passing ``bmoe audit`` (experiments/platform_demo.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bmoe.experiments.platform_demo import FLEET, JOINER, LEAVER, LIAR, STAKE
from bmoe.ledger.chainstore import ChainStore
from tests.cli.in_process import bmoe_here as bmoe


@pytest.mark.slow
def test_platform_demo_places_catches_and_bills(tmp_path: Path) -> None:
    out = tmp_path / "platform"
    result = bmoe("demo", "--platform", "--out", str(out), "--tokens", "9", "--rtt-scale", "0")
    assert result.returncode == 0, result.stderr
    summary = json.loads((out / "platform-demo.json").read_text())
    assert summary["head_hash"] in result.stdout and summary["disputes"] > 0
    rows = {row["device"]: row for row in summary["fleet"]}
    assert set(rows) == {device.name for device in (*FLEET, JOINER)}
    # too small for any expert: never placed, fetched nothing
    assert rows["phone"]["slots"] == 0 and rows["phone"]["fetched_mb"] == 0 and rows["phone"]["calls"] == 0
    # the liar: slashed to nothing and holding nothing; the leaver holds nothing; the joiner fetched what it holds
    assert rows[LIAR]["stake"] == 0 and rows[LIAR]["slots"] == 0 and rows[LIAR]["fate"].startswith("lied")
    assert rows[LEAVER]["slots"] == 0 and rows[LEAVER]["fate"] == "left mid-run"
    assert rows[JOINER.name]["slots"] > 0 and rows[JOINER.name]["fetched_mb"] > 0
    assert all(row["stake"] == STAKE for name, row in rows.items() if name != LIAR)
    assert all(row["fetched_mb"] <= row["memory_mb"] for row in rows.values())
    # the bill: what requesters paid is what edges and the validator earned; the liar earned nothing
    paid = sum(row["paid"] for row in summary["bill"])
    assert paid > 0 and paid == sum(row["earned"] for row in summary["bill"])
    assert LIAR not in {row["name"] for row in summary["bill"] if row["earned"]}
    assert [entry["payer"] for entry in summary["requests"] if "refused" in entry] == ["bob"]
    # the chain: declarations, placements, departures and settlements, and an audit that passes
    with ChainStore(out / "chain.sqlite", readonly=True) as chain:
        kinds = {tx.kind for block in chain.iter_blocks() for tx in block.transactions}
    assert {"capability", "placement", "departure", "generation_chunk", "settlement"} <= kinds
    audited = bmoe("audit", str(out))
    assert audited.returncode == 0, audited.stderr
    assert summary["head_hash"] in audited.stdout
    again = bmoe("demo", "--platform", "--out", str(out))
    assert again.returncode == 2 and "already exists" in again.stderr


def test_platform_demo_flags_are_checked_before_anything_runs(tmp_path: Path) -> None:
    wrong = bmoe("demo", "--model", "smollm2-135m", "--out", str(tmp_path / "x"))
    assert wrong.returncode == 2 and "--platform" in wrong.stderr
    tokens = bmoe("demo", "--platform", "--tokens", "0", "--out", str(tmp_path / "y"))
    assert tokens.returncode == 2 and "--tokens" in tokens.stderr
    unknown = bmoe("demo", "--platform", "--model", "no-such-model", "--out", str(tmp_path / "z"))
    assert unknown.returncode == 2 and "no-such-model" in unknown.stderr
    rounds = bmoe("demo", "--platform", "--rounds", "5", "--out", str(tmp_path / "v"))
    assert rounds.returncode == 2 and "--rounds applies to the classifier demo" in rounds.stderr
    rtt = bmoe("demo", "--rtt-scale", "0", "--out", str(tmp_path / "w"))
    assert rtt.returncode == 2 and "--rtt-scale applies to --platform" in rtt.stderr
    nan = bmoe("demo", "--platform", "--rtt-scale", "nan", "--out", str(tmp_path / "u"))
    assert nan.returncode == 2 and "'--rtt-scale': must be a finite number, got nan" in nan.stderr
    assert not any((tmp_path / name).exists() for name in "uvwxyz")
