"""Every block must carry its state root: a header without one is refused, not skipped."""

from __future__ import annotations

import dataclasses

import pytest

from bmoe.ledger.errors import InvalidBlock
from bmoe.ledger.state import LedgerState, apply_block
from bmoe.run.session import Session
from tests.conftest import small_config


def test_a_block_without_a_state_root_is_refused(tiny_data, tmp_path) -> None:  # type: ignore[no-untyped-def]
    with Session(small_config(), dataset=tiny_data, run_dir=tmp_path / "run") as session:
        session.train(rounds=1)
        assert session.node.chain is not None
        genesis, first = list(session.node.chain.iter_blocks())
    state = apply_block(LedgerState(), genesis)
    assert apply_block(state, first).height == 1  # the sealed block, as it is, is fine
    for root in ("", None):
        stripped = dataclasses.replace(first, header=dataclasses.replace(first.header, state_root=root))
        with pytest.raises(InvalidBlock, match="no state root"):
            apply_block(state, stripped)
    headless = dataclasses.replace(genesis, header=dataclasses.replace(genesis.header, state_root=""))
    with pytest.raises(InvalidBlock, match="no state root"):
        apply_block(LedgerState(), headless)
