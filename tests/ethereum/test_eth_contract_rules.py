"""The contract against a real anvil: hand-built rounds sealed, and every rule it enforces refusing a block
with its reason, the refused block leaving nothing behind."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest

from bmoe.ethereum.anvil import DEV_CHAIN_ID, Anvil
from bmoe.ethereum.cids import NO_CID
from bmoe.ethereum.contract import LedgerContract
from bmoe.ethereum.errors import ContractReverted
from bmoe.ethereum.logs import sealed_blocks
from bmoe.ethereum.records import ZERO32, DecisionRecord
from tests.engines.anvil import anvil_node  # noqa: F401
from tests.ethereum.helpers import (
    ACCEPTED,
    EDGES,
    EXPERTS,
    GATE,
    MALFORMED,
    NEW_GATE,
    NO_QUORUM,
    RESULT,
    UPDATE,
    Chain,
    accept,
    cid,
    commit,
    digest,
    dissent,
    enrolment,
    funded_account,
    withheld,
)


@pytest.fixture(scope="module")
def ledger(anvil_node: Anvil) -> Iterator[LedgerContract]:  # noqa: F811
    validator = funded_account(anvil_node, "validator")
    contract, _ = LedgerContract.deploy(anvil_node.url, DEV_CHAIN_ID, validator, enrolment([validator.address]))
    chain = Chain(contract)
    chain.seal(chain.block())  # block 0: the genesis, no round
    yield contract


def refused(ledger: LedgerContract, reason: str, **changes: object) -> None:
    """The template round with ``changes`` is refused for ``reason``, and nothing of it is recorded."""
    chain = Chain(ledger)
    head, nonce, records = ledger.head(), ledger.sender.nonce, [ledger.edge_record(edge.hex()) for edge in EDGES]
    block = chain.block(**{**chain.template(f"refused-{reason}"), **changes})
    with pytest.raises(ContractReverted, match=reason) as caught:
        chain.seal(block)
    assert "\n" not in str(caught.value)
    assert ledger.head() == head and ledger.sender.nonce == nonce
    assert [ledger.edge_record(edge.hex()) for edge in EDGES] == records


def test_a_round_of_hand_built_records_is_sealed_and_applied(ledger: LedgerContract) -> None:
    chain = Chain(ledger)
    block = chain.block(**chain.template("first"))
    sent = chain.seal(block)
    assert sent.gas_used > 0 and ledger.head() == (block.header.height, block.header.block_hash.hex())
    sealed = ledger.sealed_block(block.header.height)
    assert (sealed.block_hash, sealed.state_root) == (block.header.block_hash.hex(), block.header.state_root.hex())
    assert ledger.gate_cid() != ledger.sealed_block(0).block_cid
    record = ledger.edge_record(EDGES[4].hex())
    assert (record.committed, record.accepted, record.dissent, record.withheld) == (4, 3, 1, 0)
    assert ledger.edge_record(EDGES[0].hex()).accepted == 4
    logged = sealed_blocks(ledger)
    assert logged[-1].records == block and logged[-1].transaction == sent.tx_hash


def test_an_update_decision_sets_the_expert_cid_and_the_gate_update_sets_the_gate(ledger: LedgerContract) -> None:
    from bmoe.ethereum.cids import cid_from_chain

    assert ledger.expert_cids() == [cid_from_chain(*cid("D")), cid_from_chain(*cid("E"))]
    assert ledger.gate_cid() == cid_from_chain(*NEW_GATE) != cid_from_chain(*GATE)
    assert EXPERTS[0] != cid("D")


def test_a_block_from_an_account_that_is_not_an_enrolled_validator_is_refused(
        ledger: LedgerContract, anvil_node: Anvil) -> None:  # noqa: F811
    outsider = LedgerContract.connect(anvil_node.url, DEV_CHAIN_ID, ledger.address, funded_account(anvil_node, "x"))
    chain = Chain(ledger)
    with pytest.raises(ContractReverted, match="sender is not an enrolled validator"):
        chain.seal(chain.block(**chain.template("outsider")), ledger=outsider)


def test_a_block_at_the_wrong_height_or_on_the_wrong_parent_is_refused(ledger: LedgerContract) -> None:
    chain = Chain(ledger)
    block = chain.block()
    with pytest.raises(ContractReverted, match=r"height is not the head's \+ 1"):
        chain.seal(dataclasses.replace(block, header=dataclasses.replace(block.header, height=block.header.height + 1)))
    with pytest.raises(ContractReverted, match="parent is not the head"):
        chain.seal(dataclasses.replace(block, header=dataclasses.replace(block.header, parent_hash=digest("other"))))


def test_an_edge_committing_twice_for_one_expert_and_phase_is_refused(ledger: LedgerContract) -> None:
    commitments = (*Chain(ledger).template("double")["commitments"], commit(1, 0, RESULT, "A"))  # type: ignore[misc]
    refused(ledger, "edge already committed for this expert and phase", commitments=commitments)


def test_a_commitment_by_an_unenrolled_edge_is_refused(ledger: LedgerContract) -> None:
    stranger = dataclasses.replace(commit(1, 0, RESULT, "A"), edge=b"\x77" * 32)
    commitments = (*Chain(ledger).template("stranger")["commitments"], stranger)  # type: ignore[misc]
    refused(ledger, "commitment by an unenrolled edge", commitments=commitments)


def split_round(ledger: LedgerContract, decision: DecisionRecord) -> dict[str, object]:
    """Expert 0's result split 2-2-1 (A: edges 1, 2; B: 3, 4; C: 5), decided by ``decision``; no update."""
    template = Chain(ledger).template("split")
    return {"round": template["round"],
            "commitments": (commit(1, 0, RESULT, "A"), commit(2, 0, RESULT, "A"), commit(3, 0, RESULT, "B"),
                            commit(4, 0, RESULT, "B"), commit(5, 0, RESULT, "C")),
            "decisions": (decision,), "misbehaviours": ()}


def test_a_decision_whose_group_misses_the_quorum_is_refused(ledger: LedgerContract) -> None:
    refused(ledger, "supporters do not meet the quorum", **split_round(ledger, accept(0, RESULT, "A", (1, 2))))


def test_no_quorum_is_refused_where_a_group_meets_the_quorum(ledger: LedgerContract) -> None:
    no_quorum = DecisionRecord(0, RESULT, NO_QUORUM, ZERO32, NO_CID, 5, ())
    refused(ledger, "a group meets the quorum: not no_quorum", decisions=(
        no_quorum, *Chain(ledger).template("nq")["decisions"][1:]))  # type: ignore[index]


def test_a_split_decided_no_quorum_records_nobody_dissenting(ledger: LedgerContract) -> None:
    no_quorum = DecisionRecord(0, RESULT, NO_QUORUM, ZERO32, NO_CID, 5, ())
    for accused in ((dissent(1, 0, RESULT, "A"),), (dissent(5, 0, RESULT, "C"),)):
        records = split_round(ledger, no_quorum)
        records["misbehaviours"] = accused
        refused(ledger, "dissent under no_quorum", **records)
    chain = Chain(ledger)
    before = ledger.edge_record(EDGES[0].hex()).dissent
    chain.seal(chain.block(**split_round(ledger, no_quorum)))
    assert ledger.edge_record(EDGES[0].hex()).dissent == before


def test_a_supporter_that_did_not_commit_the_accepted_digest_is_refused(ledger: LedgerContract) -> None:
    decisions = list(Chain(ledger).template("liar")["decisions"])  # type: ignore[call-overload]
    decisions[0] = accept(0, RESULT, "A", (1, 2, 3, 4, 5))
    refused(ledger, "supporter committed another digest", decisions=tuple(decisions))


def test_a_supporter_that_committed_nothing_is_refused(ledger: LedgerContract) -> None:
    template = Chain(ledger).template("silent")
    commitments = tuple(c for c in template["commitments"] if c.edge != EDGES[0] or c.phase != RESULT  # type: ignore
                        or c.expert != 1)
    refused(ledger, "supporter did not commit for this expert", commitments=commitments)


def test_a_group_that_leaves_out_an_agreeing_edge_is_refused(ledger: LedgerContract) -> None:
    decisions = list(Chain(ledger).template("partial")["decisions"])  # type: ignore[call-overload]
    decisions[1] = accept(1, RESULT, "C", (1, 2, 3, 4))
    refused(ledger, "supporters are not every edge that committed the digest", decisions=tuple(decisions))


def test_an_accepted_cid_no_supporter_committed_is_refused(ledger: LedgerContract) -> None:
    decisions = list(Chain(ledger).template("cid")["decisions"])  # type: ignore[call-overload]
    decisions[0] = dataclasses.replace(decisions[0], cid=cid("elsewhere"))
    refused(ledger, "accepted CID is none of the supporters' committed CIDs", decisions=tuple(decisions))


def test_a_dissent_record_against_an_edge_in_the_accepted_group_is_refused(ledger: LedgerContract) -> None:
    refused(ledger, "dissent against an edge in the accepted group", misbehaviours=(dissent(1, 0, RESULT, "A"),))


def test_dissent_evidence_that_is_not_the_committed_digest_is_refused(ledger: LedgerContract) -> None:
    refused(ledger, "evidence is not the edge's committed digest", misbehaviours=(dissent(5, 0, RESULT, "A"),))


def test_withheld_against_an_edge_that_committed_is_refused(ledger: LedgerContract) -> None:
    refused(ledger, "withheld by an edge that committed", misbehaviours=(withheld(5, 0, RESULT),))


def test_misbehaviour_before_its_decision_and_accusing_twice_are_refused(ledger: LedgerContract) -> None:
    template = Chain(ledger).template("order")
    late = (dissent(5, 0, RESULT, "B"), dissent(5, 0, RESULT, "B"))
    refused(ledger, "edge already accused for this expert and phase", misbehaviours=late)
    refused(ledger, "misbehaviour before the decision", decisions=template["decisions"][:2],
            commitments=tuple(c for c in template["commitments"] if c.phase == RESULT),  # type: ignore[attr-defined]
            misbehaviours=(dissent(5, 0, UPDATE, "B"),))


def test_an_expert_with_commitments_left_undecided_is_refused(ledger: LedgerContract) -> None:
    decisions = Chain(ledger).template("undecided")["decisions"][:3]  # type: ignore[index]
    refused(ledger, "an expert with commitments was not decided", decisions=decisions)


def test_a_malformed_group_is_recorded_and_its_supporters_may_be_accused(ledger: LedgerContract) -> None:
    chain = Chain(ledger)
    template = chain.template("malformed")
    malformed = DecisionRecord(1, RESULT, MALFORMED, digest("C"), NO_CID, 5, EDGES)
    commitments = tuple(c for c in template["commitments"] if c.phase == RESULT)  # type: ignore[attr-defined]
    block = chain.block(round=template["round"], commitments=commitments,
                        decisions=(template["decisions"][0], malformed),  # type: ignore[index]
                        misbehaviours=(dissent(5, 0, RESULT, "B"), dissent(2, 1, RESULT, "C")))
    chain.seal(block)
    assert sealed_blocks(ledger)[-1].records.decisions[1].status == MALFORMED != ACCEPTED


def test_an_inference_round_updates_no_gate(ledger: LedgerContract) -> None:
    template = Chain(ledger).template("infer")
    infer = dataclasses.replace(template["round"], kind=2)  # type: ignore[type-var]
    refused(ledger, "an inference task updates no gate", round=infer)
