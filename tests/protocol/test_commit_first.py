"""Commit first, upload on demand: edges sign (digest, CID) without uploading, and after each phase the round
has exactly the objects it needs uploaded, each once, from one edge that committed it.

With r replicas agreeing one copy is uploaded, not r; a dissenter's object (the evidence behind its record)
is uploaded too, and under ``tolerance`` every answer. An edge asked first that does not deliver is replaced by
the next edge that committed the same CID, so nothing honest is accused; an answer whose object never arrives
is not recorded (its edge is withheld), so every recorded commitment has its object and ``bmoe audit`` passes.
The ledger is the one an upload-everything-first run seals, bit for bit.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from bmoe.data import Dataset
from bmoe.ledger.encoding import canonical_json
from bmoe.ledger.state import LedgerState, TaskState, apply_block
from bmoe.ledger.transactions import Transaction, tx_to_dict
from bmoe.protocol.edges import ResultWork, UpdateWork
from bmoe.protocol.round import RoundOutcome
from bmoe.protocol.validator import committed_cids
from bmoe.run.audit import audit_run_dir
from bmoe.run.config import RunConfig
from bmoe.run.session import Session
from bmoe.storage import BlobStore
from tests.conftest import small_config

HONEST = small_config()
ATTACKED = small_config(malicious_ratio=0.4, attack="gaussian", attack_params={"probability": 1.0}, collude=True)
SAMPLED = small_config(assignment="sampled", replicas=3, malicious_ratio=0.4, attack="gaussian",
                       attack_params={"probability": 1.0}, collude=True)
TOLERANCE = ATTACKED.replace(comparison="tolerance")
ROUNDS = 3


class Uploads:
    """A gateway that passes everything through and records each upload request."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.requests: list[tuple[str, str, dict[str, list[str]]]] = []

    def uploads(self, task_id: str, phase: str, requests: Mapping[str, list[str]]) -> None:
        self.requests.append((task_id, phase, {address: list(cids) for address, cids in requests.items()}))
        self.inner.uploads(task_id, phase, requests)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class UploadFirst(Uploads):
    """The behaviour before commit-first: every edge uploads everything it commits before the round sees it."""

    def results(self, work: ResultWork) -> list[Transaction]:
        return self._everything(work.task_id, "result", self.inner.results(work))

    def updates(self, work: UpdateWork) -> list[Transaction]:
        return self._everything(work.task_id, "update", self.inner.updates(work))

    def _everything(self, task_id: str, phase: str, txs: list[Transaction]) -> list[Transaction]:
        self.inner.uploads(task_id, phase, {tx.sender: committed_cids(tx) for tx in txs})
        return txs


def with_gateway(session: Session, gateway: Uploads) -> Uploads:
    session.participants.gateway = gateway  # type: ignore[assignment]
    return gateway


def committed(session: Session) -> Iterator[tuple[LedgerState, TaskState, Transaction]]:
    """Every edge answer of the chain, with the replayed state and task after its block."""
    assert session.node.chain is not None
    state = LedgerState()
    for block in session.node.chain.iter_blocks():
        state = apply_block(state, block)
        for tx in block.transactions:
            if tx.kind in ("commitment", "expert_update"):
                yield state, state.tasks[tx.payload["task_id"]], tx


def audits(run_dir: Path, head: str | None) -> int:
    report = audit_run_dir(run_dir, ())
    assert report.head_hash == head
    return report.evidence_required


def test_agreeing_replicas_upload_one_copy_of_each_object(tiny_data: Dataset, tmp_path: Path) -> None:
    outcomes: list[RoundOutcome] = []
    with Session(HONEST, dataset=tiny_data, run_dir=tmp_path / "run") as session:
        gateway = with_gateway(session, Uploads(session.participants.gateway))
        session.train(rounds=ROUNDS, on_round=outcomes.append)
        answers = list(committed(session))
        store = session.store
        head = session.head_hash
    audits(tmp_path / "run", head)
    for outcome in outcomes:
        task_id = f"train-{outcome.round:06d}"
        txs = [tx for _, _, tx in answers if tx.payload["task_id"] == task_id]
        every = [cid for tx in txs for cid in committed_cids(tx)]  # what each edge uploaded before: every copy
        once = set(every)
        asked = [(phase, request) for task, phase, request in gateway.requests if task == task_id]
        assert [phase for phase, _ in asked] == ["result", "update"]  # one request per phase: nobody refused
        requested = [cid for _, request in asked for cids in request.values() for cid in cids]
        assert sorted(requested) == sorted(once)  # each object asked of one edge, once
        assert len(once) == 2 * outcome.accepted  # one result and one update per decided expert
        assert len(every) == HONEST.num_edges * len(once)  # instead of M = 5 copies
        objects = sum(store.size(cid) for cid in once)
        sent = sum(len(canonical_json(tx_to_dict(tx))) for tx in txs)
        assert sum(outcome.traffic.up.values()) == objects + sent
        assert sum(store.size(cid) for cid in every) == HONEST.num_edges * objects  # what was counted before


def test_dissenters_evidence_is_uploaded_and_the_run_audits(tiny_data: Dataset, tmp_path: Path) -> None:
    with Session(ATTACKED, dataset=tiny_data, run_dir=tmp_path / "run") as session:
        gateway = with_gateway(session, Uploads(session.participants.gateway))
        session.train(rounds=ROUNDS)
        answers = list(committed(session))
        records = session.node.state.edge_records
        head = session.head_hash
        assert all(session.store.has(cid) for _, _, tx in answers for cid in committed_cids(tx))
    colluders = {edge.address for edge in session.edges if edge.behaviour.malicious}
    assert all(records[edge].dissent > 0 for edge in colluders)
    assert all(records[edge].dissent == records[edge].withheld == 0 for edge in records if edge not in colluders)
    # colluders commit one CID between them: one copy of their evidence and one of the honest answer per expert
    for task_id, phase, request in gateway.requests:
        kind = "commitment" if phase == "result" else "expert_update"
        txs = [tx for _, _, tx in answers if tx.payload["task_id"] == task_id and tx.kind == kind]
        experts = {entry["expert"] for tx in txs for entry in tx.payload["results" if phase == "result" else "updates"]}
        requested = [cid for cids in request.values() for cid in cids]
        assert sorted(requested) == sorted({cid for tx in txs for cid in committed_cids(tx)})
        assert len(requested) == 2 * len(experts)
        assert len(request) > 2  # the uploads are spread over the edges that agree
    assert len(gateway.requests) == 2 * ROUNDS  # nobody was asked twice
    assert audits(tmp_path / "run", head) > 0


def test_a_supporter_that_does_not_upload_is_replaced_by_the_next(
        tiny_data: Dataset, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with Session(ATTACKED, dataset=tiny_data) as reference:
        reference.train(rounds=ROUNDS)
    with Session(ATTACKED, dataset=tiny_data, run_dir=tmp_path / "run") as session:
        lazy = session.edges[0]  # honest, and asked first for the first object of every phase
        monkeypatch.setattr(lazy, "upload", lambda cids: [])
        gateway = with_gateway(session, Uploads(session.participants.gateway))
        session.train(rounds=ROUNDS)
        records = session.node.state.edge_records
        head = session.head_hash
    assert head == reference.head_hash
    assert len(gateway.requests) == 4 * ROUNDS  # each phase: a request, and one for what the lazy edge kept
    for first, retry in zip(gateway.requests[::2], gateway.requests[1::2], strict=True):
        assert first[:2] == retry[:2] and lazy.address in first[2] and lazy.address not in retry[2]
        assert sorted(cid for cids in retry[2].values() for cid in cids) == sorted(first[2][lazy.address])
    honest = [edge.address for edge in session.edges if not edge.behaviour.malicious]
    assert all(records[edge].dissent == records[edge].withheld == 0 for edge in honest)
    assert audits(tmp_path / "run", head) > 0


def test_an_answer_whose_object_never_arrives_is_not_recorded(
        tiny_data: Dataset, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with Session(ATTACKED, dataset=tiny_data, run_dir=tmp_path / "run") as session:
        colluders = [edge for edge in session.edges if edge.behaviour.malicious]
        for edge in colluders:
            monkeypatch.setattr(edge, "upload", lambda cids: [])
        outcomes = session.train(rounds=ROUNDS)
        records = session.node.state.edge_records
        answers = list(committed(session))
        head = session.head_hash
    assert all(outcome.accepted == outcome.accepted + outcome.rejected for outcome in outcomes)
    for edge in colluders:  # recorded as sending nothing, every round: signing goes on from the ledger's nonce
        assert records[edge.address].committed == records[edge.address].dissent == 0
        assert records[edge.address].withheld > 0
    assert {tx.sender for _, _, tx in answers}.isdisjoint(edge.address for edge in colluders)
    audits(tmp_path / "run", head)


@pytest.mark.parametrize("config", [TOLERANCE, SAMPLED, SAMPLED.replace(comparison="tolerance")],
                         ids=["tolerance", "sampled", "sampled-tolerance"])
def test_every_answer_is_stored_and_the_run_audits(tiny_data: Dataset, tmp_path: Path, config: RunConfig) -> None:
    with Session(config, dataset=tiny_data, run_dir=tmp_path / "run") as session:
        gateway = with_gateway(session, Uploads(session.participants.gateway))
        session.train(rounds=ROUNDS)
        answers = list(committed(session))
        stored = [session.store.has(cid) for _, _, tx in answers for cid in committed_cids(tx)]
        head = session.head_hash
        escalated = any(task.escalated for _, task, _ in answers)
    assert stored and all(stored)
    requested = [cid for _, _, request in gateway.requests for cids in request.values() for cid in cids]
    assert len(requested) == len(set(requested)) < len(stored)  # each object once
    assert escalated == (config.assignment == "sampled")
    assert audits(tmp_path / "run", head) > 0


INTEGER = ATTACKED.replace(comparison="integer", expert="mlp-int")
TRADITIONAL = small_config(framework="traditional", malicious_ratio=0.4, attack="sign_flip")


@pytest.mark.parametrize("config", [ATTACKED, SAMPLED, TOLERANCE, INTEGER, TRADITIONAL],
                         ids=["exact", "sampled", "tolerance", "integer", "traditional"])
def test_the_ledger_is_the_one_an_upload_everything_first_run_seals(tiny_data: Dataset, config: RunConfig) -> None:
    heads, outputs = [], []
    for gateway, share in ((Uploads, True), (UploadFirst, True), (Uploads, False)):
        with Session(config.replace(share_compute=share), dataset=tiny_data) as session:
            first = with_gateway(session, gateway(session.participants.gateway))
            session.train(rounds=ROUNDS)
            outcome = session.infer(tiny_data.x_test[:16])
            heads.append(session.head_hash)
            outputs.append(outcome.logits)
            assert (first.requests == []) == (gateway is UploadFirst)  # everything was already stored
    assert heads[0] == heads[1] == heads[2]
    assert all(bool((out == outputs[0]).all()) for out in outputs)


class Fetches:
    """A store view that records the CIDs read through it (one edge's downloads)."""

    def __init__(self, inner: BlobStore) -> None:
        self.inner = inner
        self.read: list[str] = []

    def get(self, cid: str) -> bytes:
        self.read.append(cid)
        return self.inner.get(cid)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def test_edges_keep_their_own_updates_and_the_download_count_is_what_they_fetched(tiny_data: Dataset) -> None:
    with Session(HONEST.replace(share_compute=False), dataset=tiny_data) as session:
        views = {}
        for edge in session.edges:  # each edge its own runtime, as edge processes
            views[edge.address] = Fetches(session.store)
            edge.runtime.store = views[edge.address]  # type: ignore[assignment]
            session.participants.gateway._handlers[edge.address].store = views[edge.address]  # type: ignore[attr-defined]
        outcomes = []
        for _ in range(ROUNDS):
            for view in views.values():
                view.read.clear()
            outcomes += session.train(rounds=session.trained_rounds + 1)
            for address, view in views.items():
                assert outcomes[-1].traffic.down[address] == sum(session.store.size(cid) for cid in view.read)
        genesis = session.node.state.genesis
        assert genesis is not None
        updated = set(session.node.state.expert_cids) - set(genesis["expert_cids"])
        assert updated and all(edge.runtime.holds(cid) for edge in session.edges for cid in updated)
    first, later = outcomes[0].traffic.down, outcomes[-1].traffic.down
    assert sum(later.values()) < sum(first.values())  # the genesis experts are fetched once
