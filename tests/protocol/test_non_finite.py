"""One NaN or inf can no longer poison the ledger: task data holding one is refused before anything is
recorded (no edge computes on it, none is accused, nothing is sealed, the next round works); a round
whose own numbers go non-finite (training diverging) fails with RoundDiverged and seals nothing."""

from __future__ import annotations

import math

import pytest
import torch

from bmoe.edge.behaviour import EdgeBehaviour
from bmoe.moe.payloads import NonFiniteValue, PayloadError, decode_task, encode_task
from bmoe.protocol.gate_step import RoundDiverged
from bmoe.protocol.round import run_round
from bmoe.run.session import Session
from bmoe.storage import deserialize_tensors, serialize_tensors
from tests.conftest import small_config

POISONS = (float("nan"), float("inf"), float("-inf"))


def poisoned(x: torch.Tensor, value: float, seed: int) -> torch.Tensor:
    """``x`` with ``value`` at one position drawn from ``seed``."""
    generator = torch.Generator().manual_seed(seed)
    bad = x.clone()
    bad.view(-1)[int(torch.randint(bad.numel(), (1,), generator=generator))] = value
    return bad


def ledger_view(session: Session) -> tuple[object, ...]:
    state = session.node.state
    return (state.height, session.node.head_hash, state.gate_cid, tuple(state.expert_cids),
            {edge: record.to_dict() for edge, record in state.edge_records.items()}, dict(state.nonces))


def nobody_accused(session: Session) -> bool:
    return all(r.dissent == 0 and r.withheld == 0 for r in session.node.state.edge_records.values())


@pytest.mark.parametrize("value", POISONS, ids=("nan", "inf", "-inf"))
@pytest.mark.parametrize("seed", range(3))
def test_non_finite_task_data_is_refused_through_the_python_api(tiny_data, value: float, seed: int) -> None:  # type: ignore[no-untyped-def]
    session = Session(small_config(), dataset=tiny_data)
    session.train(rounds=1)
    before = ledger_view(session)
    x, y = tiny_data.x_train[:32], tiny_data.y_train[:32]
    with pytest.raises(NonFiniteValue, match="task data x: 1 non-finite"):
        session.infer(poisoned(x, value, seed))
    with pytest.raises(NonFiniteValue, match="task data x"):
        run_round(session.participants, 1, poisoned(x, value, seed + 10), y, train=True, lr=0.1)
    assert ledger_view(session) == before and not session.node.pending
    assert session.infer(tiny_data.x_test[:16]).logits.isfinite().all()  # the next honest rounds work
    session.train(rounds=2)
    assert session.node.state.height == 3 and nobody_accused(session)


def test_non_finite_task_bytes_are_refused_where_they_are_decoded(tiny_data) -> None:  # type: ignore[no-untyped-def]
    """A publisher that skips ``encode_task``: its stored bytes are refused by every reader, and the
    signed task is never recorded."""
    session = Session(small_config(), dataset=tiny_data)
    x, y = tiny_data.x_train[:32], tiny_data.y_train[:32]
    for value in POISONS:
        with pytest.raises(NonFiniteValue):
            encode_task(poisoned(x, value, 0), y)
        data = serialize_tensors({"x": poisoned(x, value, 1).contiguous(), "y": y.contiguous()})
        with pytest.raises(NonFiniteValue):
            decode_task(data)
        cid = session.store.put(data)
        task = session.publisher.sign("task", {"task_id": f"train-{int(value > 0):06d}", "kind": "train",
                                               "data_cid": cid, "samples": 32, "round": 0})
        with pytest.raises(NonFiniteValue):
            session.run_published(task)
        session.participants.resync_nonces()
        assert session.node.state.height == 0 and not session.node.pending
    with pytest.raises(PayloadError, match="integer label"):
        encode_task(x, y.float())
    session.train(rounds=1)
    assert session.node.state.height == 1 and nobody_accused(session)


def test_a_diverging_round_fails_by_name_and_seals_nothing_non_finite(tiny_data) -> None:  # type: ignore[no-untyped-def]
    session = Session(small_config(), dataset=tiny_data)
    x, y = tiny_data.x_train[:32], tiny_data.y_train[:32]
    with pytest.raises(RoundDiverged, match=r"round diverged: .*nothing is sealed"):
        for round_index in range(6):
            run_round(session.participants, round_index, x, y, train=True, lr=1e20, balance=0.01)
    failed_at = session.node.state.height
    assert failed_at < 6 and not session.node.pending and nobody_accused(session)
    state = session.node.state
    for cid in (state.gate_cid, *state.expert_cids):  # every sealed weight is finite
        assert all(t.isfinite().all() for t in deserialize_tensors(session.store.get(cid))[0].values())
    losses = [tx.payload["loss"] for tx in session.node.last_transactions if tx.kind == "gate_update"]
    assert all(math.isfinite(loss) for loss in losses)


def test_a_gate_step_that_overflows_fails_before_its_update_is_recorded(tiny_data) -> None:  # type: ignore[no-untyped-def]
    session = Session(small_config(), dataset=tiny_data)
    before = ledger_view(session)
    with pytest.raises(RoundDiverged, match="learning rate"):
        run_round(session.participants, 0, tiny_data.x_train[:32], tiny_data.y_train[:32], train=True,
                  lr=float("inf"), balance=0.01)
    assert ledger_view(session) == before and not session.node.pending


class NonFiniteOutput(EdgeBehaviour):
    """Commits a result holding inf (what an overflowing or lying edge would send)."""

    malicious = True  # its bytes differ from the honest edges' on purpose

    def tamper_output(self, ctx, output):  # type: ignore[no-untyped-def]
        return torch.full_like(output, float("inf"))


def test_a_minority_edge_sending_inf_is_outvoted_and_only_it_is_accused(tiny_data) -> None:  # type: ignore[no-untyped-def]
    session = Session(small_config(), dataset=tiny_data)
    liar = session.edges[-1]
    liar.behaviour = NonFiniteOutput()
    outcome = session.train(rounds=1)[0]
    assert outcome.rejected == 0 and outcome.logits.isfinite().all()
    records = session.node.state.edge_records
    assert records[liar.address].dissent > 0
    assert all(records[e.address].dissent == 0 for e in session.edges[:-1])


def test_edges_agreeing_on_a_non_finite_result_fail_the_round_and_nobody_is_accused(tiny_data) -> None:  # type: ignore[no-untyped-def]
    session = Session(small_config(), dataset=tiny_data)
    for edge in session.edges:
        edge.behaviour = NonFiniteOutput()
    before = ledger_view(session)
    with pytest.raises(RoundDiverged, match="5 edges agree on a non-finite result"):
        session.train(rounds=1)
    assert ledger_view(session) == before and not session.node.pending


def test_a_lone_edge_whose_accepted_result_overflows_fails_the_round_and_is_not_accused(tiny_data) -> None:  # type: ignore[no-untyped-def]
    """M = 1 under majority: the one edge's result is what the rule accepts, so its overflow is divergence."""
    session = Session(small_config(num_edges=1), dataset=tiny_data)
    session.edges[0].behaviour = NonFiniteOutput()
    before = ledger_view(session)
    with pytest.raises(RoundDiverged, match="1 edges agree on a non-finite result"):
        session.train(rounds=1)
    assert ledger_view(session) == before and not session.node.pending
    assert session.node.state.edge_records[session.edges[0].signer.address].dissent == 0
