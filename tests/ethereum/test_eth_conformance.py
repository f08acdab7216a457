"""The ledger conformance vectors on the Ethereum backend: a ``LedgerNode`` whose blocks are sealed by the
bmoe contract on a real anvil (one contract per vector). Every vector's refusals, summaries and state roots
must equal the reference's, and the contract's own state must agree with the ledger's after each vector."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bmoe.ethereum.anvil import Anvil
from bmoe.ethereum.backend import deploy_ledger
from bmoe.ethereum.sealer import EthereumSealer
from bmoe.ledger.conformance import load_vectors, run_vector
from bmoe.ledger.keys import Identity
from bmoe.ledger.node import LedgerNode
from bmoe.storage import MemoryStore
from tests.engines.anvil import anvil_node  # noqa: F401
from tests.ethereum.helpers import funded_account

VECTORS = load_vectors()


# In the fast tier (tests/tiers.py) though it needs anvil: anvil starts in a few seconds, once for the module.
@pytest.mark.witness(seconds=30)
@pytest.mark.parametrize("vector", VECTORS, ids=lambda v: v["name"])
def test_ethereum_ledger_passes(vector: dict[str, Any], anvil_node: Anvil) -> None:  # noqa: F811
    account = funded_account(anvil_node, f"conformance/{vector['name']}")
    nodes: list[tuple[LedgerNode, EthereumSealer]] = []

    def ethereum_ledger(proposer: Identity, genesis: dict[str, Any]) -> tuple[LedgerNode, dict[str, Any]]:
        contract, section = deploy_ledger(anvil_node.url, account, genesis, {proposer.address: account})
        sealer = EthereumSealer(contract, MemoryStore(), lambda: node.state)
        node = LedgerNode(proposer, 0, None, sealer=sealer)
        nodes.append((node, sealer))
        return node, section

    result = run_vector(vector, ethereum_ledger)
    assert result.passed, result.failures
    node, sealer = nodes[0]
    contract = sealer.contract
    assert contract.head() == (node.state.height, node.head_hash)
    assert len(sealer.costs.gas) == len(vector["blocks"])
    summary = json.loads(json.dumps(node.view().summary()))
    assert contract.expert_cids() == summary["expert_cids"]
    assert contract.gate_cid() == summary["gate_cid"]
    for edge, record in summary["edge_records"].items():
        assert contract.edge_record(edge).to_dict() == record
    for edge, balance in summary.get("balances", {}).items():
        assert contract.balance(edge).to_dict() == balance
    assert contract.sealed_block(node.state.height).state_root == vector["blocks"][-1]["state_root"]
