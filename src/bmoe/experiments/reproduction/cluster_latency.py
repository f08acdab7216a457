"""Fig. 4b on a local cluster: the round latency of B-MoE and of the traditional framework, measured on
real processes (``bmoe reproduce fig4b --cluster``), beside the in-process figures for the same setting.
B-MoE is measured as the paper runs it (``all``: every edge computes every activated expert) and with
sampled replication (r = 2 and 3 of the M edges, ``docs/sampling.md``): :data:`VARIANTS`.

For each variant a cluster is started on 127.0.0.1 (the storage nodes, the validator(s) or the
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
- **storage**: waiting, before the seal, for the objects the validator wrote behind the round to be on the
  storage nodes and synced (issue 24: the data path moved storage off the exchanges, not out of the protocol);
- **consensus**: sealing the block (B-MoE only).

The in-process figures are fig4b's (:mod:`.latency`): compute and server measured in one process,
communication modelled at ``bandwidth_mbps``. Means are over rounds 2..R: round 1 pays for start-up.

Beside the parts, each row carries what the deployment pays in all: the **sum** of every edge's compute
seconds (``edges_total``) and the bytes every edge moved (``bytes``), per round.
"""

from __future__ import annotations

import statistics
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
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
from bmoe.net.cluster.launch import plan, start
from bmoe.net.cluster.processes import cpu_seconds, stop
from bmoe.net.http.auth import SignedAuth
from bmoe.net.publish.command import publish_training
from bmoe.run.config import RunConfig
from bmoe.run.session import Session
from bmoe.run.setup import derive_identities
from bmoe.verify.framework import framework_of

CLUSTER_PARTS = ("edge compute", "communication", "verification", "server", "storage", "consensus")
EDGE_TIMEOUT_S = 120.0  # a cap only: every honest edge answers long before
STORES = 2


@dataclass(frozen=True)
class Variant:
    """One measured row's framework and assignment: B-MoE ``all`` (``replicas`` None), B-MoE ``sampled``
    with ``replicas`` r of the M edges, or the traditional framework (edge i hosts expert i)."""

    framework: str
    replicas: int | None = None

    @property
    def assignment(self) -> str:
        fixed = framework_of(self.framework).assignment
        if fixed is not None:
            return fixed
        return "all" if self.replicas is None else f"sampled r={self.replicas}"

    def configure(self, config: RunConfig) -> RunConfig:
        """``config`` for this variant (a traditional server seals nothing: one validator, PoW unused)."""
        config = config.replace(framework=self.framework, assignment="all" if self.replicas is None else "sampled",
                                replicas=self.replicas or config.replicas)
        return config if framework_of(self.framework).keeps_ledger else config.replace(consensus="pow", validators=1)


VARIANTS = (Variant("bmoe"), Variant("bmoe", 2), Variant("bmoe", 3), Variant("traditional"))
TOTALS = ("edges_total", "bytes")  # per round: every edge's compute seconds summed, every edge's bytes summed


def cluster_split(times: Mapping[str, float], framework: str) -> dict[str, float]:
    """One round's measured seconds (a validator's task ``times``) in :data:`CLUSTER_PARTS`; they add up
    to the round's wall time."""
    edge = times["edges"]
    exchange = times["compute"] + times["update"]
    consensus = times["consensus"] if framework_of(framework).keeps_ledger else 0.0
    parts = {"edge compute": min(edge, exchange), "communication": max(0.0, exchange - edge),
             "verification": times["verify"], "storage": times.get("storage", 0.0), "consensus": consensus}
    parts["server"] = max(0.0, times["round"] - sum(parts.values()))
    return {name: parts[name] for name in CLUSTER_PARTS}


def _mean(rows: Sequence[Mapping[str, float]], parts: Iterable[str]) -> dict[str, float]:
    used = rows[1:] if len(rows) > 1 else rows
    return {part: statistics.fmean(r[part] for r in used) for part in parts}


def variant_config(settings: ReproSettings, variant: Variant, rounds: int) -> RunConfig:
    """The reproduction's setting (N = M = 10, K = 3, 30 % attackers) for one variant, one thread a process."""
    return variant.configure(settings.base_config().replace(malicious_ratio=0.3, rounds=rounds, threads=1))


def measure_on_cluster(config: RunConfig, data: Dataset, rounds: int, root: Path,
                       log: Callable[[str], None] = print) -> list[dict[str, float]]:
    """Start a cluster for ``config`` under ``root``, publish ``rounds`` training tasks, stop it;
    each round's ``times`` as the validator recorded them (the steps, ``edges``, ``edges_total``,
    ``bytes`` and the wall seconds ``round``), plus ``edges_cpu`` where ``/proc`` can be read: the CPU
    seconds all edge processes used from the end of the previous round (or the start) to the end of this
    one, everything they did included (polls, transfers, hashing, signing, compute)."""
    cluster = plan(root, config, data.input_shape, data.num_classes, STORES, STORES, EDGE_TIMEOUT_S, 0,
                   seeded_keys=True)  # a reproduction: the seed fixes everything, keys included
    cluster.save()
    publisher = load_identity(cluster.path(cluster.publisher_key))
    validators = [v.address for v in derive_identities(config).validators]
    cpu: list[float | None] = []

    def edges_cpu() -> float | None:
        seconds = [cpu_seconds(r.pid) for r in cluster.by_role("edge")]
        return None if None in seconds else sum(s for s in seconds if s is not None)

    def on_round(record: Mapping[str, Any]) -> None:
        cpu.append(edges_cpu())
        log(f"  round {record.get('round')}: {record['times']['round']:.3f} s")

    try:
        start(cluster, SignedAuth(publisher, trusted=validators), 120.0,
              lambda record: log(f"  {record.name} ready at {record.url or 'its validator'}"))
        urls = [r.url for r in cluster.by_role("validator") if r.url]
        cpu.append(edges_cpu())
        records = publish_training(urls, publisher, config, data, rounds, timeout=600.0,
                                   on_round=on_round)
    finally:
        left = stop([(r.pid, r.start_time) for r in cluster.processes], grace=5.0)
        if left:
            log(f"  processes still running after SIGKILL: {left}")
    measured = [dict(r["times"]) for r in records]
    readings = [c for c in cpu if c is not None]
    if len(readings) == len(cpu):
        for row, before, after in zip(measured, readings, readings[1:], strict=False):
            row["edges_cpu"] = after - before
    return measured


def measure_in_process(config: RunConfig, data: Dataset, rounds: int,
                       settings: ReproSettings) -> list[dict[str, float]]:
    """The same rounds in one process, split as fig4b splits them, with each round's :data:`TOTALS`."""
    with Session(config, dataset=data, keep_objects=False) as session:
        session.train(rounds=rounds)
        history = [r for r in session.history if r["kind"] == "train"]
    return [{**round_latency(r, config.framework, settings.latency), "edges_total": r["time_edge_total"],
             "bytes": float(r["bytes_total"])} for r in history]


def cluster_rows(settings: ReproSettings, data: Dataset, rounds: int, out: Path,
                 log: Callable[[str], None] = print) -> list[dict[str, Any]]:
    """Measure every variant on a cluster and in process; one row per (variant, where)."""
    rows = []
    for variant in VARIANTS:
        config = variant_config(settings, variant, rounds)
        ident = {"framework": variant.framework, "assignment": variant.assignment}
        name = row_label(ident)
        log(f"{name}: {rounds} rounds on a local cluster")
        with tempfile.TemporaryDirectory(prefix=f"bmoe-fig4b-{variant.framework}-") as tmp:
            measured = measure_on_cluster(config, data, rounds, Path(tmp) / "cluster", log)
        split = [cluster_split(t, variant.framework) for t in measured]
        rows.append({**ident, "where": "cluster", **_mean(split, CLUSTER_PARTS),
                     "total": _mean(measured, ["round"])["round"], **_mean(measured, TOTALS),
                     "rounds": [dict(t) for t in measured]})
        log(f"{name}: the same rounds in process")
        local = measure_in_process(config, data, rounds, settings)
        parts = _mean(local, COMPONENTS)
        rows.append({**ident, "where": "in-process",
                     "edge compute": parts["edge compute"], "communication": parts["communication"],
                     "verification": None, "server": parts["server / validators"], "storage": None,
                     "consensus": parts["consensus"],
                     "total": sum(parts.values()), **_mean(local, TOTALS), "rounds": local})
    write_table(out, "fig4b_cluster", rows, ["framework", "assignment", "where", *CLUSTER_PARTS, "total", *TOTALS])
    plot_cluster(rows, out / "fig4b_cluster.png", settings.dataset)
    return rows


def plot_cluster(rows: Sequence[Mapping[str, Any]], path: Path, dataset: str) -> None:
    fig, ax = plt.subplots(figsize=(11, 5))
    stacked_bars(ax, rows, CLUSTER_PARTS, [f"{row_label(r)}\n{r['where']}" for r in rows])
    ax.set_ylabel("seconds per training round (mean, rounds 2..R)")
    ax.set_title(f"Fig. 4b measured on a local cluster vs in process ({dataset})")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def row_label(row: Mapping[str, Any]) -> str:
    """"B-MoE all", "B-MoE sampled r=3", "traditional" (rows written before sampling was measured: all)."""
    assignment = row.get("assignment", framework_of(row["framework"]).assignment or "all")
    return FRAMEWORK_LABEL[row["framework"]] + ("" if assignment == "host" else f" {assignment}")


def report_section(rows: Sequence[Mapping[str, Any]], rounds: int, bandwidth_mbps: float) -> str:
    """REPORT.md's section on the cluster measurement."""
    by = {(row_label(r), r["where"]): r for r in rows}
    lines = ["", "## Fig. 4b on a local cluster", "",
             f"{rounds} training rounds per variant on real processes on this machine (storage nodes, "
             "validator(s) or the traditional server, one process per edge; signed HTTP, fsync'd replicated "
             "storage), beside the same rounds in one process. B-MoE as the paper runs it (`all`: every edge "
             "computes every activated expert) and with sampled replication (r of the M edges per expert). "
             "Seconds per round, mean over rounds 2..R; the last two columns are what the whole fleet pays "
             "per round: every edge's compute seconds and bytes, summed. "
             f"In process, communication is modelled at {bandwidth_mbps:g} Mbit/s; on the cluster it is measured. "
             "Plot: `fig4b_cluster.png`; numbers: `fig4b_cluster.csv` and `.json`.", "",
             "| variant | where | " + " | ".join(CLUSTER_PARTS) + " | round | edge compute, all edges | MB moved |",
             "|---|---|" + "---|" * (len(CLUSTER_PARTS) + 3)]
    for row in rows:
        cells = ["-" if row[p] is None else f"{row[p]:.3f}" for p in CLUSTER_PARTS]
        lines.append(f"| {row_label(row)} | {row['where']} | " + " | ".join(cells)
                     + f" | **{row['total']:.3f}** | {row['edges_total']:.3f} | {row['bytes'] / 1e6:.1f} |")
    traditional = row_label({"framework": "traditional"})
    ratios = []
    for label in dict.fromkeys(row_label(r) for r in rows if r["framework"] != "traditional"):
        cluster, local = by[(label, "cluster")], by[(label, "in-process")]
        base_cluster, base_local = by[(traditional, "cluster")], by[(traditional, "in-process")]
        ratios.append(f"| {label} | **{cluster['total'] / base_cluster['total']:.2f}** | "
                      f"{local['total'] / base_local['total']:.2f} | "
                      f"{cluster['edges_total'] / base_cluster['edges_total']:.2f} | "
                      f"{cluster['bytes'] / base_cluster['bytes']:.2f} |")
    lines += ["", "Ratios to traditional measured in this run:", "",
              "| variant | round, cluster | round, in process | edge compute (all edges), cluster | bytes, cluster |",
              "|---|---|---|---|---|", *ratios,
              "", "In process, each expert computation is timed once and charged to every edge that computes it, "
              "as if every edge had a machine of its own; on the cluster all edge processes compute at once on "
              "this machine's cores, so an edge's compute includes waiting for a core. On the cluster, "
              "communication is mostly the storage nodes' fsync'd, replicated writes and the signed HTTP "
              "exchanges, not bandwidth.", ""]
    return "\n".join(lines)
