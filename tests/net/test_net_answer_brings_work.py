"""One exchange per phase: an edge process answers a work item with ``POST /txs?next=1`` and the reply, once the
answer is admitted, is its next work item (as ``GET /work?after=WORK_ID`` sends it), so an edge needs no second
request to learn of the next phase. A deployment whose edges answer this way seals the in-process chain."""

from __future__ import annotations

import pytest

from bmoe.run.session import Session
from tests.net.deploy import cluster_data, running_cluster

ROUNDS = 2


@pytest.mark.slow
def test_every_answer_brings_the_next_work_item_and_the_chain_is_the_in_process_one(
        tmp_path_factory: pytest.TempPathFactory) -> None:
    root = tmp_path_factory.mktemp("follow") / "cluster"
    with running_cluster(root, 6.0) as (cluster, _):
        data = cluster_data(cluster)
        cluster.publish(ROUNDS, data)
        stats = cluster.get("/stats")
        head = cluster.get("/head")
    work = stats["work"]
    assert work["answers"] > 0 and work["followed"] == work["answers"]  # every admitted answer asked for more
    session = Session(cluster.config, dataset=data, identities=cluster.identities())
    session.train(rounds=ROUNDS)
    assert head["height"] == ROUNDS and head["head_hash"] == session.head_hash
