"""What a deployment pays per training round, measured in one run: traditional, B-MoE ``all`` and B-MoE
``sampled`` r = 2 and 3, at malicious ratio 0.3, with the accuracy each reaches under that attack.

Paper scale: tasks of 1000 samples of 28x28 inputs, N = 10 experts, K = 3, M = 10 edges, MLP experts,
lr 0.01, the default colluding Gaussian attackers (p = 0.2, std 0.5) on 30 % of the edges. Real
Fashion-MNIST when the Debian package is installed, else synthetic data of the same shape.

For each variant, per training round (mean over rounds 2..R: round 1 pays for start-up):

- **edge compute, summed**: every edge's compute seconds added up (what the fleet pays, not the
  busiest edge), as the edges time it (wall clock around forward passes and SGD steps; on the
  cluster, ten edge processes on this machine's cores also count the time they wait for a core);
- **edge CPU, summed** (cluster only): the CPU seconds all edge processes used, read from ``/proc``:
  everything an edge does (polls, transfers, hashing, signing, compute), free of waiting for a core;
- **bytes moved**: everything every edge downloaded and uploaded;
- **round latency**: the round's wall seconds.

Each is measured twice: on a local cluster of processes (storage nodes, the validator or the traditional
server, one process per edge, as ``bmoe reproduce fig4b --cluster`` starts them) and in one process
with ``share_compute=False``, so every edge really computes what it is assigned (sharing identical
replicas' computations is an emulation shortcut, not a deployment's cost). In process the round's
wall time is the emulation's: the edges compute one after another. A few rounds hold few of the
attackers' strikes, and with disputes each strike escalates split samples to all M edges, so the
accuracy runs (below) also give a **long run** estimate of compute and bytes over all their rounds:
with sharing on, each distinct computation is timed once and charged to every edge that computes it.

Accuracy under attack: each variant trains ``--rounds`` rounds in process (with compute sharing, which
leaves every result bit-identical: tests/protocol/test_determinism.py), then the ledger's model is
evaluated on the test set ("trained"), and served among the same attackers through the framework
("served": the test set ``--serve-passes`` times in inference tasks of 1000 samples, every expert's
result decided as in training; the attackers strike in about a fifth of the tasks).

It prints the ratios to traditional measured in this run and whether each target of issue 11 holds:
sampled r = 3 of M = 10 at <= 1.5x traditional's round latency on the cluster, edge compute <= 3.5x
traditional's, accuracy under attack within 1 point of ``all``.

    python benchmarks/bench_deployment.py [--rounds 250] [--cost-rounds 8] [--no-cluster] [--json PATH]
"""

from __future__ import annotations

import argparse
import datetime
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from bmoe.data import Dataset, load_dataset, make_synthetic
from bmoe.experiments.reproduction.cluster_latency import VARIANTS, Variant, measure_on_cluster, row_label
from bmoe.run.config import RunConfig
from bmoe.run.session import Session

FASHION = Path("/usr/share/datasets/fashion-mnist")
RATIO = 0.3
STEPS = ("time_gate", "time_compute", "time_verify", "time_loss", "time_update", "time_consensus")
MEASURES = ("edge_compute_sum", "edge_cpu_sum", "bytes", "round")  # edge_cpu_sum: on the cluster only
TARGETS = {"round, cluster": 1.5, "edge compute, cluster": 3.5, "edge CPU, cluster": 3.5,
           "edge compute, in process": 3.5, "edge compute, long run": 3.5}
LONG_RUN = "long run"  # the accuracy runs' rounds, in process with sharing (each computation charged per edge)
ACCURACY_POINTS = 1.0  # sampled r = 3 within this many points of `all`
TARGET_LABEL = "B-MoE sampled r=3"


def dataset() -> Dataset:
    if FASHION.is_dir():
        return load_dataset("fashion-mnist", FASHION)
    return make_synthetic(n_train=20000, n_test=1000, num_classes=10, shape=(1, 28, 28), seed=0)


def variant_config(data: Dataset, variant: Variant, rounds: int, economics: Mapping[str, int] | None = None
                   ) -> RunConfig:
    """Paper scale (tasks of 1000 samples, N = M = 10, K = 3, lr 0.01), the default colluding attack at 0.3;
    ``economics`` (stake, slash, min_stake) for the B-MoE variants: caught edges are slashed out of the fleet."""
    base = RunConfig(dataset=data.name, rounds=rounds, batch_size=1000, lr=0.01, eval_every=10**6,
                     malicious_ratio=RATIO, threads=1)
    config = variant.configure(base)
    if economics and config.framework == "bmoe":
        config = config.replace(**economics)
    return config


def _mean(rounds: Sequence[Mapping[str, float]]) -> dict[str, float]:
    used = rounds[1:] if len(rounds) > 1 else rounds
    return {m: statistics.fmean(r[m] for r in used) for m in MEASURES if all(m in r for r in used)}


def in_process_costs(config: RunConfig, data: Dataset, rounds: int) -> list[dict[str, float]]:
    """``rounds`` rounds in one process, every edge computing its own assignment (no sharing)."""
    with Session(config.replace(share_compute=False), dataset=data, keep_objects=False) as session:
        session.train(rounds=rounds)
        history = [r for r in session.history if r["kind"] == "train"]
    return [{"edge_compute_sum": r["time_edge_total"], "bytes": float(r["bytes_total"]),
             "round": sum(r[s] for s in STEPS)} for r in history]


def cluster_costs(config: RunConfig, data: Dataset, rounds: int, log: Callable[[str], None]) -> list[dict[str, float]]:
    """``rounds`` rounds on a local cluster of processes, as the validator (or server) recorded them."""
    with tempfile.TemporaryDirectory(prefix="bmoe-bench-deploy-") as tmp:
        times = measure_on_cluster(config, data, rounds, Path(tmp) / "cluster", log)
    return [{"edge_compute_sum": t["edges_total"], "bytes": t["bytes"], "round": t["round"],
             **({"edge_cpu_sum": t["edges_cpu"]} if "edges_cpu" in t else {}), "times": dict(t)} for t in times]


def accuracy_under_attack(config: RunConfig, data: Dataset, rounds: int,
                          passes: int) -> tuple[dict[str, float], list[dict[str, float]]]:
    """Test accuracy of the model trained among the attackers, and of serving the test set among them;
    and each training round's edge compute sum and bytes. With sharing on, each distinct computation is
    timed once and charged to every edge that computes it: the long run's estimate of the sum, over
    enough rounds to hold the attackers' strikes (and the disputes they cause) in their proportion."""
    with Session(config, dataset=data, keep_objects=False) as session:
        session.train(rounds=rounds)
        trained = session.evaluate()
        served = statistics.fmean(session.infer_test_set(batch_size=1000) for _ in range(passes))
        history = [r for r in session.history if r["kind"] == "train"]
    costs = [{"edge_compute_sum": r["time_edge_total"], "bytes": float(r["bytes_total"])} for r in history]
    return {"trained": trained, "served": served}, costs


def _commit() -> str | None:
    """``git describe`` of the code measured (None outside a checkout: say it with ``--commit``)."""
    try:
        out = subprocess.run(["git", "describe", "--always", "--dirty"], capture_output=True, text=True,
                             cwd=Path(__file__).parent, timeout=10, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def ratios(means: Mapping[str, Mapping[str, float]]) -> dict[str, dict[str, float]]:
    base = means["traditional"]
    return {label: {m: row[m] / base[m] for m in MEASURES if m in row and m in base} for label, row in means.items()}


def targets(result: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Each of issue 11's targets for sampled r = 3, with the value measured in this run (None: not measured)."""
    checks = []
    cluster = result["ratios"].get("cluster", {}).get(TARGET_LABEL)
    local = result["ratios"]["in-process"][TARGET_LABEL]
    cluster = cluster or {}
    measured = {"round, cluster": cluster.get("round"), "edge compute, cluster": cluster.get("edge_compute_sum"),
                "edge CPU, cluster": cluster.get("edge_cpu_sum"), "edge compute, in process": local["edge_compute_sum"],
                "edge compute, long run": result["ratios"][LONG_RUN][TARGET_LABEL]["edge_compute_sum"]}
    for name, limit in TARGETS.items():
        value = measured[name]
        checks.append({"target": f"{name} <= {limit}x traditional", "value": value,
                       "holds": None if value is None else value <= limit})
    accuracy = result["accuracy"]
    for kind in ("trained", "served"):
        gap = 100 * (accuracy[TARGET_LABEL][kind] - accuracy[row_label({"framework": "bmoe"})][kind])
        checks.append({"target": f"accuracy ({kind}) - all's, points: within {ACCURACY_POINTS:g}", "value": gap,
                       "holds": abs(gap) <= ACCURACY_POINTS})
    return checks


def _cell(values: Mapping[str, float], key: str, width: int, digits: int) -> str:
    return f"{values[key]:>{width}.{digits}f}" if key in values else f"{'-':>{width}}"


def print_report(result: Mapping[str, Any]) -> None:
    meta = result["meta"]
    print(f"\ndata: {meta['data']}; tasks of 1000 samples, N=10 K=3 M=10, malicious ratio {RATIO} (colluding "
          f"Gaussian, p=0.2); commit {meta['commit']}, {meta['date']}")
    if meta.get("economics"):
        print(f"B-MoE variants with economics {meta['economics']}: a colluder slashed below the minimum stake is "
              "no longer assigned")
    notes = {"cluster": f"mean of rounds 2..{meta['cost_rounds']}",
             "in-process": f"mean of rounds 2..{meta['cost_rounds']}, no sharing; round: the emulation's wall time, "
                           "edges one after another",
             LONG_RUN: f"in process, mean of rounds 2..{meta['rounds']} of the accuracy run; sharing on, each "
                       "computation timed once and charged to every edge that computes it"}
    for where, note in notes.items():
        if where not in result["means"]:
            continue
        print(f"\n{where}, per round [{note}]")
        print(f"  {'variant':<18} {'edge compute s':>14} {'edge CPU s':>10} {'MB moved':>9} {'round s':>8}"
              f"   / traditional: {'compute':>7} {'CPU':>5} {'bytes':>5} {'round':>5}")
        for label, row in result["means"][where].items():
            r = result["ratios"][where][label]
            print(f"  {label:<18} {_cell(row, 'edge_compute_sum', 14, 3)} {_cell(row, 'edge_cpu_sum', 10, 3)} "
                  f"{row['bytes'] / 1e6:>9.1f} {_cell(row, 'round', 8, 3)}   {'':>15}"
                  f"{_cell(r, 'edge_compute_sum', 7, 2)} {_cell(r, 'edge_cpu_sum', 5, 2)} {r['bytes']:>5.2f} "
                  f"{_cell(r, 'round', 5, 2)}")
    print(f"\naccuracy under attack: the model trained {meta['rounds']} rounds; served {meta['serve_passes']}x")
    print(f"  {'variant':<20} {'trained':>8} {'served':>8}")
    for label, acc in result["accuracy"].items():
        print(f"  {label:<20} {acc['trained']:>8.4f} {acc['served']:>8.4f}")
    print("\ntargets (sampled r=3 of M=10):")
    for check in result["targets"]:
        value = "not measured" if check["value"] is None else f"{check['value']:.2f}"
        verdict = {True: "HOLDS", False: "MISSED", None: "-"}[check["holds"]]
        print(f"  {check['target']:<48} {value:>13}  {verdict}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=250, help="training rounds for accuracy under attack [250]")
    parser.add_argument("--serve-passes", type=int, default=5, help="times the test set is served [5]")
    parser.add_argument("--cost-rounds", type=int, default=8,
                        help="rounds measured for costs, in process and on each cluster (mean of 2..R) [8]")
    parser.add_argument("--no-cluster", action="store_true", help="skip the local clusters (in process only)")
    parser.add_argument("--json", type=Path, default=None, help="also write every number measured here")
    parser.add_argument("--commit", default=None, help="the commit measured, recorded as given [git describe]")
    parser.add_argument("--stake", type=int, default=0,
                        help="B-MoE variants: each edge's stake (0: no economics); with --slash and --min-stake a "
                             "caught colluder is slashed out of the fleet")
    parser.add_argument("--slash", type=int, default=250, help="units per proven dissent, with --stake [250]")
    parser.add_argument("--min-stake", type=int, default=500, help="minimum stake to be assigned, with --stake [500]")
    args = parser.parse_args()
    economics = ({"stake": args.stake, "slash": args.slash, "min_stake": args.min_stake} if args.stake else None)
    if args.rounds < 1 or args.serve_passes < 1 or args.cost_rounds < 2:
        parser.error("--rounds and --serve-passes must be >= 1, --cost-rounds >= 2 (round 1 pays for start-up)")
    started = time.perf_counter()
    data = dataset()

    def log(line: str) -> None:
        print(f"[{time.perf_counter() - started:6.0f} s] {line}", file=sys.stderr, flush=True)

    labels = {v: row_label({"framework": v.framework, "assignment": v.assignment}) for v in VARIANTS}
    rounds: dict[str, dict[str, list[dict[str, float]]]] = {"in-process": {}, LONG_RUN: {}}
    if not args.no_cluster:
        rounds["cluster"] = {}
    accuracy: dict[str, dict[str, float]] = {}
    for variant, label in labels.items():
        log(f"{label}: {args.cost_rounds} rounds in process, no compute sharing")
        rounds["in-process"][label] = in_process_costs(variant_config(data, variant, args.cost_rounds, economics), data,
                                                       args.cost_rounds)
        if not args.no_cluster:
            log(f"{label}: {args.cost_rounds} rounds on a local cluster")
            rounds["cluster"][label] = cluster_costs(variant_config(data, variant, args.cost_rounds, economics), data,
                                                     args.cost_rounds, lambda line: log(f"  {line.strip()}"))
        log(f"{label}: {args.rounds} rounds for accuracy under attack")
        accuracy[label], rounds[LONG_RUN][label] = accuracy_under_attack(
            variant_config(data, variant, args.rounds, economics), data, args.rounds, args.serve_passes)
    means = {where: {label: _mean(r) for label, r in per.items()} for where, per in rounds.items()}
    result: dict[str, Any] = {
        "meta": {"data": data.name, "rounds": args.rounds, "serve_passes": args.serve_passes,
                 "cost_rounds": args.cost_rounds,
                 "commit": args.commit or _commit(), "date": datetime.date.today().isoformat(),
                 "malicious_ratio": RATIO, "economics": economics,
                 "seconds": round(time.perf_counter() - started, 1)},
        "means": means, "ratios": {where: ratios(m) for where, m in means.items()},
        "accuracy": accuracy, "rounds": rounds,
    }
    result["targets"] = targets(result)
    print_report(result)
    log("done")
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
