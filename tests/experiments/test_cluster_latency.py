"""Fig. 4b on a cluster: how a validator's measured seconds split into the figure's parts, and the
flags of ``bmoe reproduce --cluster`` (the measurement itself runs in test_reproduce_quick.py)."""

from __future__ import annotations

import pytest

from bmoe.experiments.reproduction.cluster_latency import CLUSTER_PARTS, cluster_split
from tests.cli.helpers import assert_user_error, bmoe

TIMES = {"gate": 0.01, "compute": 0.5, "verify": 0.03, "loss": 0.02, "update": 0.4, "consensus": 0.05,
         "mine": 0.04, "edges": 0.2, "round": 1.1}


def test_the_parts_add_up_to_the_measured_round() -> None:
    parts = cluster_split(TIMES, "bmoe")
    assert list(parts) == list(CLUSTER_PARTS)
    assert parts["edge compute"] == 0.2
    assert parts["communication"] == pytest.approx(0.9 - 0.2)  # steps 2 and 5 less the edges' compute
    assert parts["verification"] == 0.03 and parts["consensus"] == 0.05
    assert parts["server"] == pytest.approx(1.1 - 0.2 - 0.7 - 0.03 - 0.05)
    assert sum(parts.values()) == pytest.approx(1.1)


def test_a_traditional_server_seals_nothing_its_bookkeeping_is_server_time() -> None:
    parts = cluster_split(TIMES, "traditional")
    assert parts["consensus"] == 0.0
    assert parts["server"] == pytest.approx(cluster_split(TIMES, "bmoe")["server"] + 0.05)
    assert sum(parts.values()) == pytest.approx(1.1)


def test_edge_reports_cannot_exceed_the_steps_they_ran_in() -> None:
    parts = cluster_split({**TIMES, "edges": 5.0}, "bmoe")  # an edge over-reporting its compute
    assert parts["edge compute"] == 0.9 and parts["communication"] == 0.0


@pytest.mark.parametrize(("args", "needle"), [
    (["fig2", "--cluster"], "use it with fig4b or all"),
    (["fig4b", "--cluster-rounds", "3"], "--cluster-rounds needs --cluster"),
    (["fig4b", "--cluster", "--cluster-rounds", "1"], "at least 2 rounds"),
    (["fig4b", "--cluster", "--consensus", "pbft", "--validators", "3"], "--validators 4 or more"),
])
def test_bad_cluster_flags(args: list[str], needle: str) -> None:
    assert_user_error(bmoe("reproduce", *args, "--dataset", "digits", "--quick", timeout=60), needle)
