"""Fig. 4b on a cluster: how a validator's measured seconds split into the figure's parts, the variants
measured (B-MoE all, sampled r = 2 and 3, traditional) and their report, and the flags of
``bmoe reproduce --cluster`` (the measurement itself runs in test_reproduce_quick.py)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from bmoe.experiments.reproduction.cluster_latency import (
    CLUSTER_PARTS,
    VARIANTS,
    cluster_split,
    report_section,
    row_label,
)
from bmoe.experiments.reproduction.settings import ReproSettings
from bmoe.net.cluster.processes import cpu_seconds
from tests.cli.helpers import assert_user_error
from tests.cli.in_process import bmoe_here as bmoe

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


def test_the_variants_are_b_moe_all_sampled_r2_r3_and_traditional() -> None:
    base = ReproSettings(dataset="digits").base_config().replace(malicious_ratio=0.3)
    configs = [v.configure(base) for v in VARIANTS]
    assert [(c.framework, c.assignment_spec()) for c in configs] == [
        ("bmoe", "all"), ("bmoe", {"name": "sampled", "params": {"replicas": 2}}),
        ("bmoe", {"name": "sampled", "params": {"replicas": 3}}), ("traditional", "host")]
    assert all(c.malicious_ratio == 0.3 and c.num_edges == 10 for c in configs)
    assert configs[-1].consensus == "pow" and configs[-1].validators == 1
    labels = [row_label({"framework": v.framework, "assignment": v.assignment}) for v in VARIANTS]
    assert labels == ["B-MoE all", "B-MoE sampled r=2", "B-MoE sampled r=3", "traditional"]
    assert row_label({"framework": "bmoe"}) == "B-MoE all"  # a row written before sampled rows existed


def _row(framework: str, assignment: str, where: str, total: float, edges_total: float, mb: float) -> dict:
    parts = dict.fromkeys(CLUSTER_PARTS, total / len(CLUSTER_PARTS))
    return {"framework": framework, "assignment": assignment, "where": where, **parts, "total": total,
            "edges_total": edges_total, "bytes": mb * 1e6}


def test_the_report_has_a_row_per_variant_and_ratios_to_traditional() -> None:
    rows = []
    for v, (round_s, edges_s, mb) in zip(VARIANTS, [(4.0, 8.0, 200), (1.5, 2.0, 70), (1.8, 3.0, 80), (1.0, 1.0, 50)],
                                         strict=True):
        for where in ("cluster", "in-process"):
            rows.append(_row(v.framework, v.assignment, where, round_s, edges_s, mb))
    text = report_section(rows, 5, 100.0)
    assert "| B-MoE sampled r=3 | cluster |" in text and "| traditional | in-process |" in text
    assert "| B-MoE sampled r=3 | **1.80** | 1.80 | 3.00 | 1.60 |" in text
    assert "| B-MoE all | **4.00** | 4.00 | 8.00 | 4.00 |" in text
    assert "| **1.000** | 1.000 | 50.0 |" in text  # traditional's own row: round, edge compute sum, MB


def test_an_edge_process_cpu_seconds_come_from_proc() -> None:
    """What measure_on_cluster sums over the edge processes after each round (``edges_cpu``)."""
    before = cpu_seconds(os.getpid())
    assert before is not None and before > 0
    sum(i * i for i in range(2_000_000))  # burn some CPU
    assert cpu_seconds(os.getpid()) > before
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    assert cpu_seconds(int(gone.stdout)) is None and cpu_seconds(None) is None


@pytest.mark.parametrize(("args", "needle"), [
    (["fig2", "--cluster"], "use it with fig4b or all"),
    (["fig4b", "--cluster-rounds", "3"], "--cluster-rounds needs --cluster"),
    (["fig4b", "--cluster", "--cluster-rounds", "1"], "at least 2 rounds"),
    (["fig4b", "--cluster", "--consensus", "pbft", "--validators", "3"], "--validators 4 or more"),
])
def test_bad_cluster_flags(args: list[str], needle: str) -> None:
    assert_user_error(bmoe("reproduce", *args, "--dataset", "digits", "--quick", timeout=60), needle)
