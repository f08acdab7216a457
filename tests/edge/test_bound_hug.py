"""The bound's price: an attacker just inside the tolerance bound joins the honest group, is not
recorded, and moves the accepted value (the element-wise median) by no more than the honest spread;
the same attack outside the bound is caught, with the attackers and only them recorded."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch

from bmoe.data import Dataset
from bmoe.edge.attacks.bound_hug import against_step, push_rows
from bmoe.edge.behaviour import AttackContext, make_behaviour
from bmoe.protocol.comparisons.grouping import decode_answer, distance
from bmoe.protocol.grouped_check import expected_of, regroup
from bmoe.protocol.round import RoundOutcome
from bmoe.run.session import Session
from bmoe.verify.comparison import Tolerance
from tests.conftest import small_config

FLEET = "default=2,f64=3"  # the attackers (the last 2 of 5 edges) share the f64 profile, so they collude bit for bit
TOLERANCE = Tolerance()
Tensors = dict[str, torch.Tensor]


@dataclass(frozen=True)
class Decided:
    """One accepted decision of a round: the accepted value, every edge's answer, the first group."""

    round: int
    phase: str
    expert: int
    accepted: Tensors
    answers: dict[str, Tensors]  # edge -> its answer
    distances: dict[str, float | None]  # edge -> distance to the first group's medoid
    group: tuple[str, ...]


Outcome = tuple[Session, list[Decided]]


def decisions_of(session: Session, rounds: int) -> list[Decided]:
    """Every accepted decision of ``rounds`` training rounds, read from the ledger and the store."""
    found: list[Decided] = []

    def observe(outcome: RoundOutcome) -> None:
        state, store = session.node.state, session.store
        num_classes = session.dataset.num_classes
        for task in state.tasks.values():
            for phase, accepted in task.accepted_cids.items():
                for expert, cid in sorted(accepted.items()):
                    if cid is None:
                        continue
                    grouping = regroup(store, TOLERANCE, state, task, phase, expert)
                    value = decode_answer(store.get(cid), expected_of(store, task, phase, expert, num_classes))
                    assert value is not None
                    committed = task.commitments[phase][expert]
                    answers = {edge: grouping.values[digest] for edge, (digest, _) in committed.items()
                               if digest in grouping.values}
                    found.append(Decided(outcome.round, phase, expert, value, answers, grouping.distances,
                                         grouping.groups[0].edges))

    session.train(rounds=rounds, on_round=observe)
    return found


def run(data: Dataset, rounds: int = 3, **changes: object) -> Outcome:
    session = Session(small_config(comparison="tolerance", fleet=FLEET, **changes), dataset=data)
    return session, decisions_of(session, rounds)


def attacked(data: Dataset, margin: float, rounds: int = 3) -> Outcome:
    return run(data, rounds, malicious_ratio=0.4, attack="bound_hug",
               attack_params={"probability": 1.0, "margin": margin})


def honest_edges(session: Session) -> set[str]:
    return {edge.address for edge in session.edges if not edge.behaviour.malicious}


def spread(answers: list[Tensors]) -> Tensors:
    """Element-wise max - min over ``answers``."""
    return {name: (torch.stack([a[name] for a in answers]).amax(0) - torch.stack([a[name] for a in answers]).amin(0))
            for name in answers[0]}


def within(a: Tensors, b: Tensors, limit: Tensors) -> bool:
    return all(bool(((a[name].double() - b[name].double()).abs() <= limit[name].double()).all()) for name in a)


@pytest.fixture(scope="module")
def inside(tiny_data: Dataset) -> Outcome:
    return attacked(tiny_data, margin=0.9)


def test_pushed_rows_are_at_the_margin_of_the_result_bound() -> None:
    output = torch.randn(7, 4, generator=torch.Generator().manual_seed(0)) * torch.tensor([[1.0], [1e-3]] * 3 + [[5.0]])
    for target in (-1, 0, 3):
        pushed = push_rows(output, 0.9 * TOLERANCE.result_bound, target).float()
        gap = distance({"output": output}, {"output": pushed}, "result", TOLERANCE)
        assert 0.85 * TOLERANCE.result_bound < gap < TOLERANCE.result_bound
    toward = push_rows(output, 0.5, 2)
    assert bool((toward.softmax(1)[:, 2] > output.double().softmax(1)[:, 2]).all())
    away = push_rows(output, 0.5, -1)
    top = output.argmax(1, keepdim=True)
    assert bool((away.softmax(1).gather(1, top) < output.double().softmax(1).gather(1, top)).all())


def test_updates_move_against_the_sgd_step_by_the_margin() -> None:
    old = torch.randn(5, 6, generator=torch.Generator().manual_seed(1))
    new = old - 0.1 * torch.randn(5, 6, generator=torch.Generator().manual_seed(2))
    new[0, 0] = old[0, 0]  # an element the step left alone
    moved = against_step(old, new, 9e-6)
    assert float((moved - new).abs().max()) <= 9e-6 * 1.01
    assert bool((torch.sign(moved - new) == -torch.sign(new - old)).all())
    assert moved[0, 0] == new[0, 0]


def test_target_must_be_a_class() -> None:
    with pytest.raises(ValueError, match="target"):
        make_behaviour("bound_hug", target=1.5)
    with pytest.raises(ValueError, match="target 9"):
        make_behaviour("bound_hug", probability=1.0, target=9.0).tamper_output(AttackContext(0, 0, 0, 0, True),
                                                                                 torch.zeros(2, 4))


def test_attackers_inside_the_bound_join_the_honest_group_unrecorded(inside: Outcome) -> None:
    session, decided = inside
    honest = honest_edges(session)
    attackers = {edge.address for edge in session.edges} - honest
    assert {d.phase for d in decided} == {"result", "update"}
    for d in decided:
        assert set(d.group) == set(d.answers), "every answer, the attackers' included, is in the accepted group"
        bound = TOLERANCE.bound(d.phase)
        for edge in attackers:
            gap = distance(d.answers[edge], d.answers[min(honest)], d.phase, TOLERANCE)
            assert 0.5 * bound < gap <= bound, f"{d.phase}: the attacker is {gap:.3g} from an honest answer"
        assert len({id(d.answers[edge]) for edge in attackers}) == 1, "colluders publish identical bytes"
    records = session.node.state.edge_records
    assert all(records[edge].dissent + records[edge].withheld == 0 for edge in records)


def test_a_colluding_minority_inside_the_bound_moves_the_median_by_no_more_than_the_honest_spread(
        inside: Outcome) -> None:
    session, decided = inside
    honest = honest_edges(session)
    diverged = False
    for d in decided:
        mine = [d.answers[edge] for edge in sorted(honest)]
        limit = spread(mine)
        diverged |= any(bool((t > 0).any()) for t in limit.values())
        lower = {name: torch.stack([a[name] for a in mine]).amin(0) for name in limit}
        assert within(d.accepted, lower, limit), f"round {d.round} {d.phase} expert {d.expert}"
    assert diverged, "the honest fleet should disagree in its last bits somewhere"


def test_the_accepted_result_with_attackers_is_within_the_honest_spread_of_the_one_without(
        inside: Outcome, tiny_data: Dataset) -> None:
    _, with_attack = inside
    _, without = run(tiny_data, rounds=1)
    first = {d.expert: d for d in with_attack if d.round == 0 and d.phase == "result"}
    clean = {d.expert: d for d in without if d.round == 0 and d.phase == "result"}
    assert first and set(first) == set(clean)
    for expert, d in clean.items():
        limit = spread(list(d.answers.values()))  # every edge is honest in the run without attackers
        assert within(first[expert].accepted, d.accepted, limit)


def test_the_same_attack_at_ten_times_the_bound_is_caught_with_only_the_attackers_recorded(tiny_data: Dataset) -> None:
    session, decided = attacked(tiny_data, margin=10.0)
    honest = honest_edges(session)
    records = session.node.state.edge_records
    for edge in session.edges:
        flagged = records[edge.address].dissent + records[edge.address].withheld if edge.address in records else 0
        assert (flagged > 0) == (edge.address not in honest), f"edge {edge.index}: {flagged} records"
    assert decided and all(set(d.group) == honest for d in decided)
