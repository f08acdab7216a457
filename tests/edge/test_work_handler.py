"""One edge work handler: the in-process gateway and the network edge answer a work item with the same bytes.

An in-process run records every work item its gateway handed out (steps 2 and 5) and the signed
transactions that came back. Edges built as edge processes build them (their own runtime each,
``EdgeNode``) then read the same work items off the wire (``result_work_json`` / ``edge_task``) and
must sign byte-identical commitments and updates, or send nothing exactly where the in-process
edge sent nothing.
"""

from __future__ import annotations

import pytest

from bmoe.data import Dataset
from bmoe.edge.runtime import ExpertRuntime
from bmoe.edge.worker import EdgeWorker
from bmoe.ledger.node import Signer
from bmoe.ledger.transactions import Transaction, tx_to_dict
from bmoe.net.edge.node import EdgeNode
from bmoe.net.work_wire import edge_task, result_work_json, update_work_json
from bmoe.protocol.edges import EdgeGateway, PassThrough, ResultWork, UpdateWork
from bmoe.run.session import Session
from bmoe.run.setup import behaviours
from tests.conftest import small_config


class Recording(PassThrough):
    """A gateway that passes work through and records each item with the transactions it returned."""

    def __init__(self, inner: EdgeGateway) -> None:
        super().__init__(inner)
        self.log: list[tuple[ResultWork | UpdateWork, list[Transaction]]] = []

    def results(self, work: ResultWork) -> list[Transaction]:
        txs = self.inner.results(work)
        self.log.append((work, txs))
        return txs

    def updates(self, work: UpdateWork) -> list[Transaction]:
        txs = self.inner.updates(work)
        self.log.append((work, txs))
        return txs



def as_dict(tx: Transaction | None) -> dict[str, object] | None:
    return None if tx is None else tx_to_dict(tx)


@pytest.mark.parametrize("settings", [
    {"malicious_ratio": 0.4, "attack": "gaussian", "attack_params": {"probability": 1.0}},
    {"malicious_ratio": 0.4, "attack": "withhold", "attack_params": {"probability": 1.0}},
    {"framework": "traditional", "malicious_ratio": 0.4, "attack": "sign_flip"},
])
def test_the_network_edge_signs_what_the_in_process_edge_signed_for_the_same_work(
        tiny_data: Dataset, settings: dict[str, object]) -> None:
    config = small_config(**settings)
    session = Session(config, dataset=tiny_data)
    recording = Recording(session.participants.gateway)
    session.participants.gateway = recording
    session.train(rounds=2)
    session.infer(tiny_data.x_test[:16])
    nodes = []
    for index, (identity, behaviour) in enumerate(zip(session.ids.edges, behaviours(config), strict=True)):
        runtime = ExpertRuntime(session.store, session.spec)  # one per edge, as in separate processes
        worker = EdgeWorker(index, Signer(identity), behaviour, runtime, session.store, config.seed, config.collude)
        nodes.append(EdgeNode(worker, runtime, session.store, config.num_experts))

    phases = {"commitment": 0, "expert_update": 0, "nothing": 0}
    for work_id, (work, sent) in enumerate(recording.log):
        by_sender = {tx.sender: tx for tx in sent}
        nonces = {address: by_sender[address].nonce if address in by_sender else 0 for address in work.assignments}
        wire = (result_work_json if isinstance(work, ResultWork) else update_work_json)(
            work_id, work, list(work.assignments), nonces)  # type: ignore[arg-type]
        for node in nodes:
            task = edge_task(wire, node.address)
            if task is None:
                assert node.address not in work.assignments
                continue
            answer = node.handle(task)
            assert as_dict(answer) == as_dict(by_sender.get(node.address)), (work_id, node.address)
            phases[answer.kind if answer is not None else "nothing"] += 1
    assert phases["commitment"] > 0 and phases["expert_update"] > 0
    if settings.get("attack") == "withhold":
        assert phases["nothing"] > 0
