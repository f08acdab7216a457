"""``bmoe demo --platform``: the fleet placed by memory, the liar slashed and re-placed around, the join and the
leave recorded, the bill adding up, and the chain it leaves passing ``bmoe audit`` (experiments/platform_demo.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bmoe.experiments.platform_demo import FLEET, HOLDERS, JOINER, LEAVER, LIAR, STAKE, run_platform_demo
from bmoe.ledger.chainstore import ChainStore
from bmoe.ledger.placement import held_bytes
from tests.cli.in_process import bmoe_here as bmoe


@pytest.mark.slow
def test_platform_demo_places_catches_and_bills(tmp_path: Path) -> None:
    demo = run_platform_demo(tmp_path / "run", seed=0, tokens=9, distance=0.0)
    rows = {row["device"]: row for row in demo.fleet_rows()}
    assert set(rows) == {device.name for device in (*FLEET, JOINER)}
    # too small for any expert: never placed, fetched nothing
    assert rows["phone"]["slots"] == 0 and rows["phone"]["fetched_mb"] == 0 and rows["phone"]["calls"] == 0
    # the liar: slashed to nothing and holding nothing; the leaver holds nothing; every slot on HOLDERS devices
    assert rows[LIAR]["stake"] == 0 and rows[LIAR]["slots"] == 0 and rows[LIAR]["fate"].startswith("lied")
    assert rows[LEAVER]["slots"] == 0 and rows[LEAVER]["fate"] == "left mid-run"
    assert rows[JOINER.name]["slots"] > 0 and rows[JOINER.name]["fetched_mb"] > 0
    assert all(row["stake"] == STAKE for name, row in rows.items() if name != LIAR)
    holders = demo.placed.holders
    assert all(len(edges) == HOLDERS for edges in holders)
    memory = {address: demo.placed.holdings[address].memory for address in demo.names}
    assert all(used <= memory[address] for address, used in held_bytes(holders, demo.placed.slot_bytes).items())
    # the bill: what requesters paid is what edges and the validator earned; the liar earned nothing
    bill = demo.bill_rows()
    paid = sum(row["paid"] for row in bill)
    assert paid > 0 and paid == sum(row["earned"] for row in bill)
    assert LIAR not in {row["name"] for row in bill if row["earned"]}
    refused = [entry for entry in demo.served if "refused" in entry]
    assert [entry["payer"] for entry in refused] == ["bob"]
    # the chain: capability, placement, departure and settlement transactions, and an audit that passes
    with ChainStore(tmp_path / "run" / "chain.sqlite", readonly=True) as chain:
        kinds = {tx.kind for block in chain.iter_blocks() for tx in block.transactions}
    assert {"capability", "placement", "departure", "generation_chunk", "settlement"} <= kinds
    result = bmoe("audit", str(tmp_path / "run"))
    assert result.returncode == 0, result.stderr
    assert demo.head_hash in result.stdout


@pytest.mark.slow
def test_platform_demo_command_writes_its_summary_and_refuses_a_used_directory(tmp_path: Path) -> None:
    out = tmp_path / "platform"
    result = bmoe("demo", "--platform", "--out", str(out), "--tokens", "9")
    assert result.returncode == 0, result.stderr
    summary = json.loads((out / "platform-demo.json").read_text())
    assert summary["head_hash"] in result.stdout and summary["disputes"] > 0
    again = bmoe("demo", "--platform", "--out", str(out))
    assert again.returncode == 2 and "already exists" in again.stderr
    wrong = bmoe("demo", "--model", "smollm2-135m", "--out", str(tmp_path / "x"))
    assert wrong.returncode == 2 and "--platform" in wrong.stderr
