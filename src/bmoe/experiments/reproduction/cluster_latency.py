"""Fig. 4b on a local cluster: the round latency of B-MoE and of the traditional framework, measured on
real processes (``bmoe reproduce fig4b --cluster``), beside the in-process figures for the same setting.

For each framework a cluster is started on 127.0.0.1 (the storage nodes, the validator(s) or the
traditional server, one process per edge), ``rounds`` training tasks are published, and the cluster
is stopped. Every round's seconds come from the validator's task record (``times``), split into:

- **edge compute**: the busiest edge's compute, as the edges measured it (forward passes, SGD steps),
  summed over steps 2 and 5;
- **communication**: the rest of steps 2 and 5 at the validator: edges fetching the task, activation,
  experts and gradients from the storage nodes, uploading results and weights (fsync'd, replicated),
  the HTTP exchanges and the admission checks;
- **verification**: step 3, comparing the edges' results and aggregating the accepted ones;
- **server**: the gate, the loss and gate update, and the rest of the round's wall time (a
  traditional server's ledger-free bookkeeping is here too);
- **consensus**: sealing the block (B-MoE only).

The in-process figures are fig4b's (:mod:`.latency`): compute and server measured in one process,
communication modelled at ``bandwidth_mbps``. Means are over rounds 2..R: round 1 pays for start-up.
"""

from __future__ import annotations

import statistics
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from bmoe.data import Dataset
from bmoe.experiments.reproduction.figures import FRAMEWORK_LABEL, stacked_bars, write_table
from bmoe.experiments.reproduction.latency import COMPONENTS, round_latency
from bmoe.experiments.reproduction.settings import ReproSettings
from bmoe.ledger.keys import load_identity
from bmoe.net.auth import SignedAuth
from bmoe.net.cluster_launch import plan, start
from bmoe.net.processes import stop
from bmoe.net.publisher import publish_training
from bmoe.protocol.config import RunConfig
from bmoe.protocol.session import Session
from bmoe.protocol.setup import derive_identities

CLUSTER_PARTS = ("edge compute", "communication", "verification", "server", "consensus")
FRAMEWORKS = ("bmoe", "traditional")
EDGE_TIMEOUT_S = 120.0  # a cap only: every honest edge answers long before
STORES = 2


def cluster_split(times: Mapping[str, float], framework: str) -> dict[str, float]:
    """One round's measured seconds (a validator's task ``times``) in :data:`CLUSTER_PARTS`; they add up
    to the round's wall time."""
    edge = times["edges"]
    exchange = times["compute"] + times["update"]
    consensus = times["consensus"] if framework == "bmoe" else 0.0
    parts = {"edge compute": min(edge, exchange), "communication": max(0.0, exchange - edge),
             "verification": times["verify"], "consensus": consensus}
    parts["server"] = max(0.0, times["round"] - sum(parts.values()))
    return {name: parts[name] for name in CLUSTER_PARTS}


def _mean(rows: Sequence[Mapping[str, float]], parts: Iterable[str]) -> dict[str, float]:
    used = rows[1:] if len(rows) > 1 else rows
    return {part: statistics.fmean(r[part] for r in used) for part in parts}


def framework_config(settings: ReproSettings, framework: str, rounds: int) -> RunConfig:
    """The reproduction's setting (N = M = 10, K = 3, 30 % attackers) for one framework, one thread a process."""
    config = settings.base_config().replace(framework=framework, malicious_ratio=0.3, rounds=rounds, threads=1)
    if framework == "traditional":
        config = config.replace(consensus="pow", validators=1)
    return config


def measure_on_cluster(config: RunConfig, data: Dataset, rounds: int, root: Path,
                       log: Callable[[str], None] = print) -> list[dict[str, float]]:
    """Start a cluster for ``config`` under ``root``, publish ``rounds`` training tasks, stop it;
    each round's ``times`` as the validator recorded them."""
    cluster = plan(root, config, data.input_shape, data.num_classes, STORES, STORES, EDGE_TIMEOUT_S, 0)
    cluster.save()
    publisher = load_identity(cluster.path(cluster.publisher_key))
    validators = [v.address for v in derive_identities(config).validators]
    try:
        start(cluster, SignedAuth(publisher, trusted=validators), 120.0,
              lambda record: log(f"  {record.name} ready at {record.url or 'its validator'}"))
        urls = [r.url for r in cluster.by_role("validator") if r.url]
        records = publish_training(urls, cluster.stores, publisher, config, data, rounds, timeout=600.0,
                                   on_round=lambda r: log(f"  round {r.get('round')}: {r['times']['round']:.3f} s"))
    finally:
        left = stop([(r.pid, r.start_time) for r in cluster.processes], grace=5.0)
        if left:
            log(f"  processes still running after SIGKILL: {left}")
    return [dict(r["times"]) for r in records]


def measure_in_process(config: RunConfig, data: Dataset, rounds: int,
                       settings: ReproSettings) -> list[dict[str, float]]:
    """The same rounds in one process, split as fig4b splits them."""
    with Session(config, dataset=data, keep_objects=False) as session:
        session.train(rounds=rounds)
        history = [r for r in session.history if r["kind"] == "train"]
    return [round_latency(r, config.framework, settings.latency) for r in history]


def cluster_rows(settings: ReproSettings, data: Dataset, rounds: int, out: Path,
                 log: Callable[[str], None] = print) -> list[dict[str, Any]]:
    """Measure both frameworks on a cluster and in process; one row per (framework, where)."""
    rows = []
    for framework in FRAMEWORKS:
        config = framework_config(settings, framework, rounds)
        log(f"{framework}: {rounds} rounds on a local cluster")
        with tempfile.TemporaryDirectory(prefix=f"bmoe-fig4b-{framework}-") as tmp:
            measured = measure_on_cluster(config, data, rounds, Path(tmp) / "cluster", log)
        split = [cluster_split(t, framework) for t in measured]
        rows.append({"framework": framework, "where": "cluster", **_mean(split, CLUSTER_PARTS),
                     "total": _mean(measured, ["round"])["round"],
                     "rounds": [dict(t) for t in measured]})
        log(f"{framework}: the same rounds in process")
        local = measure_in_process(config, data, rounds, settings)
        parts = _mean(local, COMPONENTS)
        rows.append({"framework": framework, "where": "in-process",
                     "edge compute": parts["edge compute"], "communication": parts["communication"],
                     "verification": None, "server": parts["server / validators"], "consensus": parts["consensus"],
                     "total": sum(parts.values()), "rounds": local})
    write_table(out, "fig4b_cluster", rows, ["framework", "where", *CLUSTER_PARTS, "total"])
    plot_cluster(rows, out / "fig4b_cluster.png", settings.dataset)
    return rows


def plot_cluster(rows: Sequence[Mapping[str, Any]], path: Path, dataset: str) -> None:
    fig, ax = plt.subplots(figsize=(8, 5))
    stacked_bars(ax, rows, CLUSTER_PARTS, [f"{FRAMEWORK_LABEL[r['framework']]}\n{r['where']}" for r in rows])
    ax.set_ylabel("seconds per training round (mean, rounds 2..R)")
    ax.set_title(f"Fig. 4b measured on a local cluster vs in process ({dataset})")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def report_section(rows: Sequence[Mapping[str, Any]], rounds: int, bandwidth_mbps: float) -> str:
    """REPORT.md's section on the cluster measurement."""
    by = {(r["framework"], r["where"]): r for r in rows}
    lines = ["", "## Fig. 4b on a local cluster", "",
             f"{rounds} training rounds per framework on real processes on this machine (storage nodes, "
             "validator(s) or the traditional server, one process per edge; signed HTTP, fsync'd replicated "
             "storage), beside the same rounds in one process. Seconds per round, mean over rounds 2..R. "
             f"In process, communication is modelled at {bandwidth_mbps:g} Mbit/s; on the cluster it is measured. "
             "Plot: `fig4b_cluster.png`; numbers: `fig4b_cluster.csv` and `.json`.", "",
             "| framework | where | " + " | ".join(CLUSTER_PARTS) + " | round |",
             "|---|---|" + "---|" * (len(CLUSTER_PARTS) + 1)]
    for row in rows:
        cells = ["-" if row[p] is None else f"{row[p]:.3f}" for p in CLUSTER_PARTS]
        lines.append(f"| {FRAMEWORK_LABEL[row['framework']]} | {row['where']} | " + " | ".join(cells)
                     + f" | **{row['total']:.3f}** |")
    cluster_ratio = by[("bmoe", "cluster")]["total"] / by[("traditional", "cluster")]["total"]
    local_ratio = by[("bmoe", "in-process")]["total"] / by[("traditional", "in-process")]["total"]
    lines += ["", f"B-MoE / traditional: **{cluster_ratio:.2f}** on the cluster, {local_ratio:.2f} in process. "
              "In process, each expert computation is timed once and charged to every edge that computes it, "
              "as if every edge had a machine of its own; on the cluster all edge processes compute at once on "
              "this machine's cores, so an edge's compute includes waiting for a core. On the cluster, "
              "communication is mostly the storage nodes' fsync'd, replicated writes and the signed HTTP "
              "exchanges, not bandwidth.", ""]
    return "\n".join(lines)
