"""A language model's validator service (``net/validator/lm_service.py``) without HTTP: how it takes a round's tasks
from its queue (whole and in order, else cut short, never waiting past ``round_wait``), what a cut-short round does
(its tasks fail, nothing is sealed, the next whole round runs), the round a publisher continues from, and
``LMSession.run_published``'s refusals. The session is the real one, its edges in process."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import pytest

from bmoe.ledger.transactions import Transaction
from bmoe.net.http.stats import Counters
from bmoe.net.validator.lm_service import LMValidatorService
from bmoe.net.validator.network_edges import NetworkEdges
from bmoe.net.validator.service import ValidatorSettings
from bmoe.protocol.lm.round import publish_lm_tasks
from bmoe.run.lm.session import LMSession
from tests.lm.lm_runs import tiny_session

WAIT_S = 0.3


def _service(tmp_path: Path) -> tuple[LMValidatorService, LMSession]:
    session = tiny_session(lm={"steps": 3}, run_dir=tmp_path / "run")
    identity = session.ids.validator
    enrolled = {p.name: p.address for p in session.ids.everyone()}
    service = LMValidatorService(session, NetworkEdges(session.store, 1.0, Counters()), session.store,
                                 ValidatorSettings(identity, enrolled, "http://127.0.0.1:0"), Counters(),  # type: ignore[arg-type]
                                 round_wait=WAIT_S)
    return service, session


def _tasks(session: LMSession, round_index: int) -> list[Transaction]:
    x, y = session.batch(session.train_ids, round_index, 0)  # type: ignore[arg-type]
    return publish_lm_tasks(session.participants, round_index, x, y, session.model_config.num_hidden_layers, True)


def _take(service: LMValidatorService, queued: list[Transaction]) -> tuple[list[Transaction], float]:
    with service._cond:
        service._queue.extend(queued)
        started = time.monotonic()
        taken = service._take()
        return taken, time.monotonic() - started


def test_a_whole_round_is_taken_at_once_and_sealed_and_the_next_round_is_named(tmp_path: Path) -> None:
    service, session = _service(tmp_path)
    tasks = _tasks(session, 0)
    taken, waited = _take(service, tasks)
    assert taken == tasks and waited < WAIT_S
    service._run(taken)
    assert {service._status[str(tx.payload["task_id"])]["status"] for tx in tasks} == {"sealed"}
    assert session.node.view().height == len(tasks) and service._sealed_head()["next_round"] == 1


def test_a_round_cut_short_fails_its_tasks_seals_nothing_and_the_next_round_runs(tmp_path: Path) -> None:
    service, session = _service(tmp_path)
    first = _tasks(session, 0)
    taken, waited = _take(service, first[:2])  # the rest never arrives
    assert taken == first[:2] and WAIT_S <= waited < 5 * WAIT_S
    service._run(taken)
    assert {service._status[str(tx.payload["task_id"])]["status"] for tx in taken} == {"failed"}
    assert "is the tasks" in service._status[str(taken[0].payload["task_id"])]["error"]
    assert session.node.view().height == 0 and not session.node.pending_view().tasks
    session.participants.resync_nonces()
    second = _tasks(session, 1)
    service._run(_take(service, second)[0])
    assert session.node.view().height == len(second) and service._sealed_head()["next_round"] == 2


@pytest.mark.parametrize("case", ["not_a_first_task", "another_round_interleaved"])
def test_tasks_that_do_not_open_a_round_or_break_one_are_taken_without_waiting(tmp_path: Path, case: str) -> None:
    service, session = _service(tmp_path)
    round_0 = _tasks(session, 0)
    queued = round_0[1:] if case == "not_a_first_task" else [round_0[0], *_tasks(session, 1)]
    taken, waited = _take(service, queued)
    assert taken == queued[:1] and waited < WAIT_S


@pytest.mark.parametrize("change", ["order", "data_cid", "round"])
def test_run_published_refuses_what_is_not_one_whole_round_over_one_batch(tmp_path: Path, change: str) -> None:
    session = tiny_session(lm={"steps": 3})
    tasks = _tasks(session, 0)
    if change == "order":
        tasks[0], tasks[1] = tasks[1], tasks[0]
    else:
        other = {"data_cid": _tasks(session, 1)[0].payload["data_cid"], "round": 7}[change]
        last = tasks[-1]
        tasks[-1] = dataclasses.replace(last, payload={**last.payload, change: other})
    with pytest.raises(ValueError, match="over one batch"):
        session.run_published(tasks)
    assert session.node.view().height == 0 and not session.node.pending_view().tasks
