"""A Byzantine PBFT primary cannot get a forged block committed: honest replicas judge a proposal by the
ledger's one check-then-apply (``ledger/judge.py``), so a transaction with a zeroed or foreign signature, a
wrong Merkle root, a transaction from an unenrolled key and a block re-signed by a non-validator are each
refused, with the reason named; after a view change the honest block is sealed. And a node applies
a committed block only after the same check (``LedgerNode.seal``)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import pytest

from bmoe.consensus.byzantine import TamperProposals, permissive
from bmoe.consensus.pbft import PbftConfig, PbftReplica
from bmoe.ledger.blocks import Block, block_from_bytes, block_hash, proposal_bytes
from bmoe.ledger.chainstore import ChainStore
from bmoe.ledger.errors import InvalidBlock
from bmoe.ledger.keys import Identity
from bmoe.ledger.node import LedgerNode, Proposal, pow_sealer
from bmoe.protocol.pbft_sealing import CONSENSUS_TIMEOUT_DELAYS
from bmoe.run.session import Session
from tests.conftest import small_config
from tests.protocol.forged_blocks import FORGERIES, Forgery, zeroed_signature


def forging_once(forge: Forgery, primary: Identity, forged: list[bytes]) -> Callable[[bytes], bytes]:
    """What validator-0, a Byzantine primary, does to the blocks it proposes: forges the first (into ``forged``)."""

    def manipulate(payload: bytes) -> bytes:
        if not forged:
            forged.append(forge(payload, primary))
            return forged[0]
        return payload

    return manipulate


def byzantine_run(tiny_data, forge: Forgery) -> tuple[Session, bytes]:  # type: ignore[no-untyped-def]
    """A PBFT run of 4 whose first primary forges its first proposal; one round trained."""
    config = small_config(malicious_ratio=0.4, consensus="pbft", validators=4, byzantine_validators=1,
                          validator_attack="silent")  # validator-0's tensor work is honest; its replica is replaced
    session = Session(config, dataset=tiny_data)
    cluster = session.pbft
    assert cluster is not None
    primary = session.ids.validators[0]
    forged: list[bytes] = []
    inner = PbftReplica(primary, cluster.validators, permissive,
                        PbftConfig(timeout=CONSENSUS_TIMEOUT_DELAYS * config.message_delay))
    cluster.sim.replicas[primary.name] = TamperProposals(inner, forging_once(forge, primary, forged))
    session.train(rounds=1)
    assert forged, "the Byzantine primary never proposed"
    return session, forged[0]


@pytest.mark.parametrize("name", sorted(FORGERIES))
def test_honest_replicas_refuse_a_forged_proposal_and_name_why(name: str, tiny_data) -> None:  # type: ignore[no-untyped-def]
    forge, reason = FORGERIES[name]
    session, forged = byzantine_run(tiny_data, forge)
    cluster = session.pbft
    assert cluster is not None
    for honest in cluster.honest[1:]:  # validator-0's view sits beside the Byzantine replica, never asked
        refusals = [why for height, _, why in cluster.sim.replicas[honest].invalid_log if height == 1]
        assert any(reason in why for why in refusals), (honest, refusals)
    committed = [block_from_bytes(c.payload) for c in cluster.sim.committed["validator-1"] if c.height == 1]
    assert [proposal_bytes(b) for b in committed] != [forged]
    assert session.node.state.height == 1  # after a view change, the honest block was sealed


def test_a_node_applies_a_committed_block_only_after_checking_it(tmp_path: Path, tiny_data) -> None:  # type: ignore[no-untyped-def]
    with Session(small_config(malicious_ratio=0.4), dataset=tiny_data, run_dir=tmp_path / "run") as session:
        session.train(rounds=1)
    with ChainStore(tmp_path / "run" / "chain.sqlite") as chain:
        genesis, first = chain.block_at(0), chain.block_at(1)
    mine = pow_sealer(session.config.difficulty)

    def forging_sealer(proposal: Proposal) -> tuple[Block, float]:  # a consensus that sealed a forgery
        forged = block_from_bytes(zeroed_signature(proposal_bytes(mine(proposal)[0]), proposal.proposer))
        return mine(dataclasses.replace(proposal, transactions=forged.transactions))

    node = LedgerNode(session.ids.validator, session.config.difficulty, None, sealer=forging_sealer)
    node.adopt(genesis)
    for tx in first.transactions:
        node.submit(tx)
    with pytest.raises(InvalidBlock, match="bad signature"):
        node.seal(timestamp=first.header.timestamp)
    assert node.state.height == 0 and node.head_hash == block_hash(genesis)  # nothing applied
