"""A real B-MoE training (digits, colluding edges, stake) posted block by block to the contract on anvil: the
contract accepts every block the ledger sealed, and its head, state roots, expert and gate CIDs, balances and
edge records equal the off-chain ledger's; the logs give back exactly the records that were posted."""

from __future__ import annotations

from pathlib import Path

import pytest

from bmoe.ethereum.anvil import DEV_CHAIN_ID, Anvil
from bmoe.ethereum.cids import cid_from_chain
from bmoe.ethereum.contract import LedgerContract
from bmoe.ethereum.logs import sealed_blocks
from bmoe.ethereum.records import block_records, enrolment_of, sealed_block_cid
from bmoe.ledger.blocks import Block, block_hash, proposal_bytes
from bmoe.ledger.chainstore import ChainStore
from bmoe.ledger.state import LedgerState
from bmoe.run.config import RunConfig
from bmoe.run.session import Session
from bmoe.storage import MemoryStore
from tests.engines.anvil import anvil_node  # noqa: F401
from tests.ethereum.helpers import funded_account

# Two colluders among five edges, stake 250, slashed 100 per proven dissent, excluded below 150.
BASE = RunConfig(dataset="digits", num_experts=4, top_k=2, num_edges=5, hidden=16, rounds=5, batch_size=64, lr=0.2,
                 eval_every=100, difficulty=4, seed=11, malicious_ratio=0.4, stake=250, reward=2, slash=100,
                 min_stake=150)
VARIANTS = {
    "all-exact": BASE,
    "sampled-disputes": BASE.replace(assignment="sampled", replicas=3, attack_params={"probability": 1.0}),
    "tolerance-groups": BASE.replace(comparison="tolerance"),
}


def trained_blocks(config: RunConfig, run_dir: Path) -> list[Block]:
    with Session(config, run_dir=run_dir) as session:
        session.train()
    with ChainStore(run_dir / "chain.sqlite") as chain:
        return list(chain.iter_blocks())


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_a_real_training_posted_to_the_contract_ends_in_the_off_chain_ledgers_state(
        variant: str, anvil_node: Anvil, tmp_path: Path) -> None:  # noqa: F811
    config = VARIANTS[variant]
    blocks = trained_blocks(config, tmp_path / "run")
    validator = funded_account(anvil_node, f"validator {variant}")
    ledger, _ = LedgerContract.deploy(anvil_node.url, DEV_CHAIN_ID, validator,
                                      enrolment_of(blocks[0].transactions[0].payload, [validator.address]))
    store, state, posted = MemoryStore(), LedgerState(), []
    for block in blocks:
        records, state = block_records(state, block)
        ledger.seal_block(records)
        posted.append(records)
        assert store.put(proposal_bytes(block)) == sealed_block_cid(block)  # where an auditor fetches it

    assert ledger.head() == (state.height, block_hash(blocks[-1]))
    for block in blocks:
        sealed = ledger.sealed_block(block.header.height)
        assert (sealed.block_hash, sealed.state_root) == (block_hash(block), block.header.state_root)
        assert store.has(sealed.block_cid)
    assert ledger.expert_cids() == state.expert_cids and ledger.gate_cid() == state.gate_cid
    for edge in state.edges:
        assert ledger.balance(edge) == state.balances[edge]
        assert ledger.edge_record(edge) == state.edge_records[edge]
    attackers = state.edges[-2:]
    assert all(state.edge_records[edge].dissent > 0 and state.balances[edge].slashed > 0 for edge in attackers)

    logged = sealed_blocks(ledger)
    assert [entry.records for entry in logged] == posted
    assert {entry.validator for entry in logged} == {validator.address.lower()}
    slashed = sum(sum(entry.slashed) for entry in logged)
    assert slashed == sum(state.balances[edge].slashed for edge in state.edges)
    if variant == "sampled-disputes":
        assert any(entry.records.disputes for entry in logged)
    assert cid_from_chain(*posted[-1].header.block_cid) == sealed_block_cid(blocks[-1])
