"""``bmoe audit`` of a placed generation: it replays every declaration and placement, and a placement the rule does
not give over the recorded declarations (re-signed by a validator's key and re-sealed) fails the audit by name."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from bmoe.ledger.blocks import Block, block_to_bytes, header_hash
from bmoe.ledger.merkle import merkle_root
from bmoe.ledger.transactions import sign_transaction, tx_hash
from tests.cli.in_process import bmoe_here
from tests.generation.helpers import generate, model
from tests.generation.placement_helpers import placed, sealed_blocks
from tests.ledger.chain_surgery import read_rows, reseal, write_rows


def test_the_audit_replays_the_placement_and_refuses_one_the_rule_does_not_give(tmp_path: Path) -> None:
    run_dir = tmp_path / "ledger"
    s = placed(model(), run_dir=run_dir)
    tiny = list(s.specs)[5]  # the edge too small for any expert
    generate(s.session, lambda step: s.leave(list(s.specs)[3]) if step == 5 else None)
    audited = bmoe_here("audit", run_dir)
    assert audited.returncode == 0, audited.stderr

    block = sealed_blocks(s)[1]  # the fleet's declarations and its first placement
    placement = next(tx for tx in block.transactions if tx.kind == "placement")
    holders = [list(h) for h in placement.payload["holders"]]
    holders[0] = sorted([*holders[0][:2], tiny])
    forged = sign_transaction(s.session.validator, "placement", {**placement.payload, "holders": holders},
                              placement.nonce)
    txs = [forged if tx is placement else tx for tx in block.transactions]
    rows = read_rows(run_dir / "chain.sqlite")
    header = dataclasses.replace(block.header, merkle_root=merkle_root([tx_hash(tx) for tx in txs]))
    resealed = reseal(Block(header, tuple(txs), block.proposer_signature), s.session.validator, rows[0][1])
    write_rows(run_dir / "chain.sqlite", [rows[0], (1, header_hash(resealed.header), block_to_bytes(resealed)),
                                          *rows[2:]])
    audited = bmoe_here("audit", run_dir)
    assert audited.returncode != 0
    assert "slot 0: holders are not the placement rule's over the recorded declarations" in audited.stderr


def test_the_audit_checks_a_placement_s_slot_sizes_against_the_stored_experts(tmp_path: Path) -> None:
    from bmoe.protocol.generation.replay import placement_size_errors

    s = placed(model(), run_dir=tmp_path / "ledger")
    state = s.session.node.view()
    stored = [len(s.session.store.get(cid)) for cid in state.expert_cids]
    placement = next(tx.payload for block in sealed_blocks(s) for tx in block.transactions if tx.kind == "placement")
    assert placement_size_errors([placement], stored) == []
    sizes = list(placement["slot_bytes"])
    sizes[2] += 1
    errors = placement_size_errors([{**placement, "slot_bytes": sizes}], stored)
    assert errors == [f"placement epoch {placement['epoch']}: slot 2's size is not its stored expert's"]
    short = placement_size_errors([{**placement, "slot_bytes": sizes[:2]}], stored)
    assert short == [f"placement epoch {placement['epoch']}: slot 2's size is not its stored expert's"]
