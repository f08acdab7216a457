"""A language model's B-MoE chain posted block by block to the ledger contract on a real Ethereum node (anvil): the
contract, which knows nothing of language models, accepts every round (one task per layer and direction) and ends
in the off-chain ledger's state."""

from __future__ import annotations

from pathlib import Path

from bmoe.ethereum.accounts import derive_eth_account
from bmoe.ethereum.anvil import DEV_CHAIN_ID, Anvil
from bmoe.ethereum.contract import LedgerContract
from bmoe.ethereum.records import block_records, enrolment_of
from bmoe.ethereum.sender import fund
from bmoe.ledger.chainstore import ChainStore
from bmoe.ledger.state import LedgerState
from bmoe.run.audit import audit_run_dir
from tests.engines.anvil import anvil_node  # noqa: F401
from tests.ethereum.helpers import ETHER, dev_sender, funded_account
from tests.lm.lm_runs import tiny_session


def test_a_language_models_rounds_seal_on_the_contract(anvil_node: Anvil, tmp_path: Path) -> None:  # noqa: F811
    session = tiny_session(lm={"steps": 2}, run_dir=tmp_path / "run", malicious_ratio=0.2, attack="sign_flip",
                           attack_params={"probability": 1.0}, stake=100, slash=10, reward=1)
    session.train()
    session.close()
    chain = ChainStore(tmp_path / "run" / "chain.sqlite")
    blocks = list(chain.iter_blocks())
    chain.close()
    validator = funded_account(anvil_node, "lm validator")
    ledger, _ = LedgerContract.deploy(anvil_node.url, DEV_CHAIN_ID, validator,
                                      enrolment_of(blocks[0].transactions[0].payload, [validator.address]))
    state = LedgerState()
    for block in blocks:
        records, state = block_records(state, block)
        ledger.seal_block(records)
    assert state.head == session.head_hash()
    assert ledger.expert_cids() == state.expert_cids and ledger.gate_cid() == state.gate_cid
    for edge in state.edges:
        assert ledger.edge_record(edge) == state.edge_records[edge]
        assert ledger.balance(edge) == state.balances[edge]
    liar = session.edges[-1].address
    assert state.edge_records[liar].dissent > 0 and state.balances[liar].slashed > 0


def test_a_language_model_trains_with_its_ledger_on_ethereum(anvil_node: Anvil, tmp_path: Path) -> None:  # noqa: F811
    fund(dev_sender(anvil_node), [derive_eth_account(7, "validator-0").address], 10 * ETHER)  # the seed's account
    session = tiny_session(lm={"steps": 1}, run_dir=tmp_path / "run", consensus="ethereum", rpc_url=anvil_node.url)
    session.train()
    session.close()
    genesis = session.node.view().genesis or {}
    assert genesis["consensus"]["engine"] == "ethereum"
    report = audit_run_dir(tmp_path / "run", (), rpc_url=anvil_node.url)
    assert report.head_hash == session.head_hash() and report.height == 4  # a block per task, on the contract
    assert any("contract" in line for line in report.anchored_to)
