"""The state machine refuses what the round's rules forbid, and a refused transaction changes nothing."""

from __future__ import annotations

import copy

import pytest

from bmoe.ledger.errors import InvalidBlock, InvalidTransaction
from bmoe.ledger.keys import derive_identity
from bmoe.ledger.node import Signer
from bmoe.ledger.state import state_root
from bmoe.run.session import Session
from bmoe.verify.comparison import HonestDisagreement
from tests.conftest import small_config


@pytest.fixture
def mid_round(tiny_data):  # type: ignore[no-untyped-def]
    """A session stopped after step 2 of a training round: commitments recorded, nothing decided."""
    session = Session(small_config(malicious_ratio=0.4, attack_params={"probability": 1.0}), dataset=tiny_data)
    from bmoe.moe.payloads import encode_task

    p = session.participants
    x, y = tiny_data.x_train[:32], tiny_data.y_train[:32]
    task_cid = p.store.put(encode_task(x, y))
    p.node.submit(p.publisher.sign("task", {"task_id": "t", "kind": "train", "data_cid": task_cid,
                                            "samples": 32, "round": 0}))
    routing, groups, act = p.validator.activate("t", x, True)
    p.node.submit(act)
    for edge in session.edges:
        inputs = edge.runtime.task_inputs("t", task_cid, act.payload["activation_cid"],
                                          lambda t, a, runtime=edge.runtime: runtime.decode_task(t, a, 4))
        edge.begin_task()
        for tx in edge.compute(0, inputs, sorted(groups), list(p.node.working.expert_cids), True):
            edge.upload([entry["cid"] for entry in tx.payload["results"]])  # commit first, then upload (as asked)
            p.node.submit(tx)
    return session, (routing, groups)


def resync(session: Session, signer: Signer | None = None) -> Signer:
    """A signer (the validator's by default) set to the next nonce the ledger expects from it."""
    signer = signer if signer is not None else session.validator.signer
    signer.next_nonce = session.node.working.nonces.get(signer.address, -1) + 1
    return signer


def expect_refused(session: Session, tx, match: str) -> None:  # type: ignore[no-untyped-def]
    before = state_root(session.node.working)
    tasks_before = copy.deepcopy(session.node.working.tasks)
    with pytest.raises(InvalidTransaction, match=match):
        session.node.submit(tx)
    assert state_root(session.node.working) == before
    assert repr(session.node.working.tasks) == repr(tasks_before)


def decide(session: Session, routed):  # type: ignore[no-untyped-def]
    routing, groups = routed
    return session.validator.decide("t", "result", {e: int(r.numel()) for e, r in groups.items()}, routing, groups)


def test_acceptance_must_be_what_the_rule_decides(mid_round) -> None:  # type: ignore[no-untyped-def]
    session, routed = mid_round
    honest_payload = decide(session, routed).transactions[0].payload
    decisions, output_cid = list(honest_payload["decisions"]), honest_payload["output_cid"]
    task = session.node.working.tasks["t"]
    attacker = session.edges[-1].address
    forged = [dict(d) for d in decisions]
    bad_digest, bad_cid = task.commitments["result"][forged[0]["expert"]][attacker]
    forged[0].update(digest=bad_digest, cid=bad_cid)
    def acceptance(entries, **extra):  # type: ignore[no-untyped-def]
        return resync(session).sign("acceptance", {"task_id": "t", "decisions": entries, **extra})

    expect_refused(session, acceptance(forged, output_cid=output_cid), "accepts")
    expect_refused(session, acceptance(decisions[1:], output_cid=output_cid), "cover exactly")
    expect_refused(session, acceptance(decisions), "output_cid")
    session.node.submit(acceptance(decisions, output_cid=output_cid))


def test_only_assigned_enrolled_senders_and_fresh_nonces(mid_round) -> None:  # type: ignore[no-untyped-def]
    session, _ = mid_round
    edge = session.edges[0]
    outsider = Signer(derive_identity(99, "x"))
    entry = {"expert": 0, "digest": "0" * 64, "cid": "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"}
    expect_refused(session, outsider.sign("commitment", {"task_id": "t", "results": [entry]}), "not an enrolled")
    expect_refused(session, resync(session, edge.signer).sign("commitment", {"task_id": "t", "results": [entry]}),
                   "already committed")
    stale = Signer(edge.signer.identity, next_nonce=0)
    expect_refused(session, stale.sign("commitment", {"task_id": "t", "results": [entry]}), "nonce 0")
    task = {"task_id": "u", "kind": "train", "data_cid": entry["cid"], "samples": 1, "round": 1}
    expect_refused(session, resync(session, edge.signer).sign("task", task), "only the publisher")
    genesis = dict(session.node.state.genesis or {})
    expect_refused(session, resync(session).sign("genesis", genesis), "genesis only once")


def test_misbehaviour_evidence_must_match_the_commitment(mid_round) -> None:  # type: ignore[no-untyped-def]
    session, routed = mid_round
    decided = decide(session, routed)
    session.node.submit(decided.transactions[0])
    accusation = decided.transactions[1].payload
    honest = session.edges[0].address
    framed = {**accusation, "edge": honest}
    expect_refused(session, resync(session).sign("misbehaviour", framed), "accepted group")
    lying = {**accusation, "records": [{**accusation["records"][0], "evidence": "f" * 64}]}
    expect_refused(session, resync(session).sign("misbehaviour", lying), "evidence")
    for tx in decided.transactions[1:]:
        session.node.submit(tx)


def test_a_block_with_an_unfinished_round_is_refused(mid_round) -> None:  # type: ignore[no-untyped-def]
    session, _ = mid_round
    height = session.node.state.height
    with pytest.raises(InvalidBlock, match="undecided"):
        session.node.seal(timestamp=1)
    assert session.node.state.height == height
    assert session.node.chain is None or session.node.chain.height() == height


def test_failures_are_data_no_quorum_renormalises(tiny_data) -> None:  # type: ignore[no-untyped-def]
    # 3 of 5 edges withhold: no expert reaches a majority, nothing is accepted, the round still seals.
    session = Session(small_config(malicious_ratio=0.6, attack="withhold", attack_params={"probability": 1.0}),
                      dataset=tiny_data)
    outcome = session.train(rounds=1)[0]
    assert outcome.accepted == 0 and outcome.rejected == sum(1 for c in outcome.counts if c > 0)
    assert float(outcome.logits.abs().sum()) == 0.0
    assert session.node.state.height == 1
    assert session.node.state.expert_cids == session.node.state.genesis["expert_cids"]


def test_malformed_accepted_result_is_recorded_not_crashed(tiny_data) -> None:  # type: ignore[no-untyped-def]
    # Traditional: a replayed stale result of another shape is accepted by the sole rule but malformed.
    session = Session(small_config(framework="traditional", num_edges=4, malicious_ratio=0.5, attack="replay",
                                   attack_params={"probability": 1.0}), dataset=tiny_data)
    outcomes = session.train(rounds=3)
    assert any(outcome.rejected > 0 for outcome in outcomes[1:])
    assert session.node.state.height == 3


def test_honest_edges_that_disagree_fail_loudly(tiny_data) -> None:  # type: ignore[no-untyped-def]
    from bmoe.edge.behaviour import EdgeBehaviour

    class JitteryButHonest(EdgeBehaviour):
        """Stands in for a nondeterministic kernel: honest intent, different bits per edge."""

        def tamper_output(self, ctx, output):  # type: ignore[no-untyped-def]
            return output + 1e-7 * (ctx.edge + 1)

    session = Session(small_config(), dataset=tiny_data)
    for edge in session.edges:
        edge.behaviour = JitteryButHonest()
    with pytest.raises(HonestDisagreement, match="same thread count"):
        session.train(rounds=1)


def test_a_bogus_cid_under_the_majority_digest_is_never_accepted(tiny_data, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """An edge repeats the majority's digest but names other bytes' CID: the validators accept a CID whose
    bytes they checked; the run ends exactly where an honest one does."""
    from bmoe.ledger.transactions import sign_transaction

    honest_run = Session(small_config(), dataset=tiny_data)
    honest_run.train(rounds=2)
    session = Session(small_config(), dataset=tiny_data, run_dir=tmp_path / "run")
    liar = min(session.edges, key=lambda edge: edge.address)  # first in every supporter list
    bogus = session.store.put(b"not the result")
    original = liar.compute

    def compute(*args, **kwargs):  # type: ignore[no-untyped-def]
        txs = original(*args, **kwargs)
        forged = []
        for tx in txs:
            results = [{**entry, "cid": bogus} for entry in tx.payload["results"]]
            forged.append(sign_transaction(liar.signer.identity, tx.kind, {**tx.payload, "results": results},
                                           tx.nonce))
        return forged

    liar.compute = compute  # type: ignore[method-assign]
    session.train(rounds=2)
    assert session.node.state.expert_cids == honest_run.node.state.expert_cids
    assert session.node.chain is not None
    named = [entry["cid"] for block in session.node.chain.iter_blocks() for tx in block.transactions
             if tx.kind == "acceptance" for entry in tx.payload["decisions"]]
    assert named and bogus not in named
