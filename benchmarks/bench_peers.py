"""bmoe's deployment beside hivemind, the unverified distributed-MoE library, on the same workload in one run
(issue 24): round time as a ratio to hivemind's grouped client, the machine's load stated.

**The paper's workload** (the first table): N = 10 MLP experts 784 -> 256 -> 10 (bmoe's ``mlp`` preset), top-3
of a linear gate, batches of 1000 Fashion-MNIST samples (real files when ``/usr/share/datasets/fashion-mnist``
exists, else synthetic data of the same shape), SGD lr 0.01, one process per expert on 127.0.0.1, one torch
thread per process, no attackers. Per variant, the mean round time of rounds 2..R (round 1 pays for start-up):

- **hivemind, one server per expert** (``peers_hivemind.py``): hivemind 1.1.12's ``Server`` hosting one
  ``ModuleBackend`` per process (its DHT, p2pd, connection handler and task pools), SGD 0.01 server-side; the
  client's round (its wall clock): the gate forward here, ONE ``RemoteExpert`` call per activated expert with its
  rows, all at once, bmoe's combine, cross-entropy, one backward call per expert, all at once (each steps that
  server's SGD), the gate's SGD step. hivemind's own ``RemoteMixtureOfExperts`` would send one call per sample and
  expert: this grouped client is the fair, faster peer.
- **bmoe traditional** (expert i on edge i, nothing verified), **B-MoE sampled r = 3** and **B-MoE all**, each on
  a local cluster as ``bmoe reproduce fig4b --cluster`` starts one (two storage nodes, the validator or the
  traditional server, M = 10 edge processes; ``cluster_latency.measure_on_cluster``): the validator's wall
  seconds of each round (from taking the task to sealing it: the measure of issue 24's table), and its
  **communication share**: the validator's steps 2 and 5 less the busiest edge's compute, over the round
  (``cluster_latency.cluster_split``, the share issue 24 puts at 84 %). Beside it, **end to end**: the
  publisher's clock from one round sealed to the next (storing the task on the storage nodes, posting it, the
  round, polling until sealed), what a user of the deployment waits per round; for hivemind both columns are
  the client's round.

**One layer of the language model** (the second table): the default model (d = 128, 8 SwiGLU experts of width 256,
top-2, 12 sequences x 64 tokens, AdamW at the peak lr 1e-3) cut to ``--layers 1``, the Shakespeare corpus as
``bmoe lm data`` caches it. Rows:

- **hivemind, the MoE layer alone**: 8 hivemind servers (one SwiGLU expert each, AdamW server-side); per round the
  client routes the 768 tokens' post-attention hidden states (the 1-layer model's, on the round's seeded batch)
  with the layer's router, one call per activated expert, all at once, combine, a stand-in loss (the output's mean
  square), one backward call per expert, all at once, the router's AdamW step: the cost of the layer's remote part;
- **hivemind, the whole 1-layer model**: the same servers as the layer's experts inside bmoe's ``MoETransformer``
  (embedding, attention, router and head local, the model's own per-expert loop, so one call after another; the
  loss with its auxiliary terms; AdamW on the local parameters): one training step, comparable with bmoe's round;
- **bmoe, local step**: the same 1-layer model trained in this process without any protocol
  (``lm_cluster.local_seconds``): the floor;
- **B-MoE sampled r = 3 / all on a cluster** (``bmoe lm cluster --layers 1 --edges 8``, one storage node,
  ``lm_cluster.cluster_rounds``): the validator's wall seconds of the round (its two tasks, the layer's forward
  and backward) with its split and communication share, and end to end the publisher's round latency, from
  posting the two tasks to the last one sealed (the batch was stored before).

Ratios are to the first row of each table. Everything shares this machine's cores (the servers, edges, validator
and stores): the load average before and after is printed, and timings from a machine busy with other jobs are
distorted. Without hivemind (``pip install -e .[bench]`` installs it; CI does not), or when its servers cannot
start, the benchmark prints why and still measures the bmoe rows.

    python benchmarks/bench_peers.py [--rounds 10] [--lm-rounds 6] [--no-lm] [--json PATH]
"""

from __future__ import annotations

import argparse
import datetime
import itertools
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

os.environ.setdefault("HIVEMIND_LOGLEVEL", "WARNING")  # before hivemind is imported: its INFO lines are noise here

import torch
from torch import nn

from bmoe.data import Dataset
from bmoe.experiments.reproduction.cluster_latency import (
    CLUSTER_PARTS,
    Variant,
    cluster_split,
    measure_on_cluster,
    row_label,
)
from bmoe.lm.model import build_model
from bmoe.moe.gate import LinearGate
from bmoe.run.config import RunConfig
from bmoe.run.lm.batches import TRAINING, seeded_batch
from bmoe.run.lm.config import LMRunConfig
from bmoe.run.lm.text import LMText, load_text

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_deployment import _commit, dataset
from lm_cluster import cluster_rounds, local_seconds
from peers_hivemind import ExpertShape, HivemindExperts, grouped_round

HIVEMIND = "hivemind, one server per expert"
EXPERTS, TOP_K = 10, 3  # the paper's N and K (RunConfig's defaults, which the bmoe rows use)
VARIANT_NAMES = {"traditional": Variant("traditional"), "sampled": Variant("bmoe", 3), "all": Variant("bmoe")}
CLASSIFIER_VARIANTS = tuple(VARIANT_NAMES.values())
TARGETS = {"traditional": 1.0, "B-MoE sampled r=3": 1.3, "B-MoE all": 2.0}  # issue 24: x hivemind's grouped client
COMMUNICATION_TARGET = 0.30  # issue 24: a B-MoE cluster round's communication share
LM_EDGES = 8  # one edge per expert of the layer
LM_LAYERS = 4  # the default model's depth: its per-layer round trips
LM_LAYER, LM_MODEL, LM_LOCAL = "hivemind, the MoE layer alone", "hivemind, the whole 1-layer model", "bmoe, local step"
Log = Callable[[str], None]


def hivemind_version() -> tuple[str | None, str | None]:
    """hivemind's version, or None and why it cannot be used here."""
    try:
        import hivemind
    except ImportError as err:
        return None, f"hivemind is not installed ({err}); pip install -e .[bench]"
    return str(hivemind.__version__), None


def _one_line(err: BaseException) -> str:
    text = " ".join(str(err).split())
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


def _mean_after_first(values: Sequence[float]) -> float:
    return statistics.fmean(values[1:] if len(values) > 1 else values)


# --- the paper's workload -------------------------------------------------------------------------------------


def hivemind_classifier(data: Dataset, rounds: int, log: Log) -> list[float]:
    """Wall seconds of each grouped-client round against one hivemind server per expert."""
    torch.manual_seed(0)
    input_dim = int(torch.tensor(data.x_train.shape[1:]).prod())
    gate = LinearGate(input_dim, EXPERTS)  # one logit per expert
    optimizer = torch.optim.SGD(gate.parameters(), lr=0.01)
    shape = ExpertShape("mlp", input_dim, 256, data.num_classes, "sgd", 0.01)  # bmoe's mlp preset: 256 hidden
    seconds = []
    with HivemindExperts(shape, range(EXPERTS), log) as servers, ThreadPoolExecutor(EXPERTS) as pool:
        for r in range(rounds):
            at = (r * 1000) % (len(data.y_train) - 1000)
            x = data.x_train[at:at + 1000].flatten(1)  # (B, 784)
            y = data.y_train[at:at + 1000]  # (B,)
            started = time.perf_counter()
            grouped_round(servers.experts, gate, optimizer, x,
                          lambda out, y=y: nn.functional.cross_entropy(out, y), TOP_K, data.num_classes, pool)
            seconds.append(time.perf_counter() - started)
            log(f"  round {r + 1}: {seconds[-1]:.3f} s")
    return seconds


def bmoe_classifier(data: Dataset, variant: Variant, rounds: int, log: Log) -> tuple[list[dict[str, float]],
                                                                                     list[float]]:
    """The validator's times of each round of ``variant`` on a local cluster (no attackers), and the publisher's
    seconds of rounds 2..R: from the previous round sealed to this one sealed (storing the task on the storage
    nodes, posting it, the round, polling until sealed)."""
    base = RunConfig(dataset=data.name, rounds=rounds, batch_size=1000, lr=0.01, eval_every=10**6, threads=1)
    sealed: list[float] = []

    def on_line(line: str) -> None:
        if line.lstrip().startswith("round "):  # measure_on_cluster logs each round as the publisher sees it sealed
            sealed.append(time.perf_counter())
        log(line)

    with tempfile.TemporaryDirectory(prefix="bmoe-bench-peers-") as tmp:
        times = measure_on_cluster(variant.configure(base), data, rounds, Path(tmp) / "cluster", on_line)
    return times, [after - before for before, after in itertools.pairwise(sealed)]


def communication(times: Sequence[Mapping[str, float]], framework: str) -> dict[str, float]:
    """Mean seconds of each part of a cluster round (rounds 2..R) and the communication share of the round."""
    used = times[1:] if len(times) > 1 else times
    split = [cluster_split(t, framework) for t in used]
    parts = {part: statistics.fmean(s[part] for s in split) for part in split[0]}
    parts["share"] = statistics.fmean(s["communication"] / t["round"] for s, t in zip(split, used, strict=True))
    return parts


# --- one layer of the language model --------------------------------------------------------------------------


def lm_config(flags: Mapping[str, Any] | None = None) -> LMRunConfig:
    return LMRunConfig.build({"layers": 1, "validation_every": 10**6, "validation_batches": 1},
                             {"num_edges": LM_EDGES, **(flags or {})})


def hivemind_lm(config: LMRunConfig, text: LMText, rounds: int, log: Log) -> dict[str, list[float]]:
    """Wall seconds per round of the layer alone (grouped client) and of the whole 1-layer model's step."""
    settings: Any = config.lm
    model_config = settings.model_config(text.tokenizer.vocab_size)
    model = build_model(model_config, config.run.seed)
    layer = model.layers[0]
    moe = layer.block_sparse_moe
    d, context = model_config.hidden_size, model_config.max_position_embeddings
    shape = ExpertShape("swiglu", d, model_config.intermediate_size, d, "adamw", settings.max_lr)
    seconds: dict[str, list[float]] = {LM_MODEL: [], LM_LAYER: []}  # the table's order
    with HivemindExperts(shape, range(model_config.num_local_experts), log) as servers, \
            ThreadPoolExecutor(model_config.num_local_experts) as pool:
        router_optimizer = torch.optim.AdamW(moe.gate.parameters(), lr=settings.max_lr)
        for r in range(rounds):
            x, _ = seeded_batch(config.run.seed, settings, text.train_ids, context, r, TRAINING)  # (B, T)
            with torch.no_grad():
                cos, sin = model.rotary(x.shape[1])
                h = layer.post_attention_layernorm(layer.attend(model.embed(x), cos, sin)).reshape(-1, d)  # (B*T, d)
            started = time.perf_counter()
            grouped_round(servers.experts, moe.gate, router_optimizer, h, lambda y: y.square().mean(),
                          model_config.num_experts_per_tok, d, pool)
            seconds[LM_LAYER].append(time.perf_counter() - started)
        moe.experts = nn.ModuleList(servers.experts)  # the model's own loop now calls the servers
        optimizer = torch.optim.AdamW(model.parameters(), lr=settings.max_lr)  # the local parameters
        for r in range(rounds):
            x, y = seeded_batch(config.run.seed, settings, text.train_ids, context, r, TRAINING)
            started = time.perf_counter()
            optimizer.zero_grad()
            out = model(x, y)
            assert out.loss is not None
            out.loss.backward()
            optimizer.step()
            seconds[LM_MODEL].append(time.perf_counter() - started)
        log(f"  layer alone {_mean_after_first(seconds[LM_LAYER]):.3f} s, whole model "
            f"{_mean_after_first(seconds[LM_MODEL]):.3f} s per round")
    return seconds


def bmoe_lm(assignment: list[str], rounds: int, text: LMText, layers: int = 1,
            stats: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """The publisher's records of ``rounds`` rounds of the ``layers``-layer model on a local cluster (``stats``:
    filled with the validator's ``/stats`` at the end)."""
    flags = ["--edges", str(LM_EDGES), "--layers", str(layers), "--eval-every", str(10**6), "--eval-batches", "1",
             *assignment]
    with tempfile.TemporaryDirectory(prefix="bmoe-bench-peers-lm-") as tmp:
        return cluster_rounds(Path(tmp) / "cluster", flags, rounds, text, stats)


def layer_round_trips(stats: Mapping[str, Any]) -> dict[str, float]:
    """One layer's round trip (a forward task's routed tokens pushed to its edges, every (layer, expert) call's
    output back), from the validator's ``/stats``: how many, p50 and p99 seconds."""
    return dict(stats.get("exchange_s", {}).get("result forward", {"n": 0, "p50": 0.0, "p99": 0.0}))


# --- the run ---------------------------------------------------------------------------------------------------


def classifier_table(data: Dataset, rounds: int, hivemind_ok: bool, log: Log,
                     variants: Sequence[Variant] = CLASSIFIER_VARIANTS) -> dict[str, Any]:
    rows: dict[str, dict[str, Any]] = {}
    notes: dict[str, str] = {}
    if hivemind_ok:
        log(f"{HIVEMIND}: {rounds} rounds")
        try:
            seconds = _mean_after_first(hivemind_classifier(data, rounds, log))
            rows[HIVEMIND] = {"round": seconds, "end_to_end": seconds}
        except Exception as err:  # the peer failing to start is a result to print, not the end of the run
            notes[HIVEMIND] = _one_line(err)
            log(f"  hivemind failed: {notes[HIVEMIND]}")
    for variant in variants:
        label = row_label({"framework": variant.framework, "assignment": variant.assignment})
        log(f"{label}: {rounds} rounds on a local cluster")
        times, publisher = bmoe_classifier(data, variant, rounds, lambda line: log(f"  {line.strip()}"))
        rows[label] = {"round": _mean_after_first([t["round"] for t in times]),
                       "end_to_end": statistics.fmean(publisher),
                       "parts": communication(times, variant.framework), "times": times}
    return {"rows": rows, "notes": notes}


def lm_table(rounds: int, hivemind_ok: bool, log: Log) -> dict[str, Any]:
    config = lm_config()
    text = load_text(config.lm)
    rows: dict[str, dict[str, Any]] = {}
    notes: dict[str, str] = {}
    if hivemind_ok:
        log(f"hivemind, 8 SwiGLU experts: {rounds} rounds of the layer, {rounds} of the whole 1-layer model")
        try:
            for label, seconds in hivemind_lm(config, text, rounds, log).items():
                rows[label] = {"round": _mean_after_first(seconds), "end_to_end": _mean_after_first(seconds)}
        except Exception as err:
            notes[LM_LAYER] = _one_line(err)
            log(f"  hivemind failed: {notes[LM_LAYER]}")
    local = _mean_after_first(local_seconds(config, text, rounds))
    rows[LM_LOCAL] = {"round": local, "end_to_end": local}
    for label, assignment in (("B-MoE sampled r=3", ["--assignment", "sampled", "--replicas", "3"]),
                              ("B-MoE all", ["--assignment", "all"])):
        log(f"{label}, 1-layer language model: {rounds} rounds on a local cluster")
        stats: dict[str, Any] = {}
        records = bmoe_lm(assignment, rounds, text, stats=stats)
        times = [r["validator_times"] for r in records if r.get("validator_times")]
        rows[label] = {"round": _mean_after_first([t["round"] for t in times]),
                       "end_to_end": _mean_after_first([r["round_seconds"] for r in records]),
                       "parts": communication(times, "bmoe"), "times": times, "layer": layer_round_trips(stats)}
    log(f"B-MoE sampled r=3, the {LM_LAYERS}-layer language model: {rounds} rounds on a local cluster")
    stats = {}
    bmoe_lm(["--assignment", "sampled", "--replicas", "3"], rounds, text, LM_LAYERS, stats)
    layers = {"B-MoE sampled r=3, 1 layer": rows["B-MoE sampled r=3"]["layer"],
              "B-MoE all, 1 layer": rows["B-MoE all"]["layer"],
              f"B-MoE sampled r=3, {LM_LAYERS} layers": layer_round_trips(stats)}
    return {"rows": rows, "notes": notes, "layer_round_trips": layers}


def load() -> list[float]:
    return [round(v, 2) for v in os.getloadavg()]


def print_table(title: str, table: Mapping[str, Any], base: str) -> None:
    rows, notes = table["rows"], table["notes"]
    ref = rows.get(base, {})
    print(f"\n{title}")
    print(f"  {'variant':<36} {'round s':>8} {'/ hivemind':>10} {'end to end s':>12} {'/ hivemind':>10} "
          f"{'comm. share':>11}   validator's round: {' / '.join(CLUSTER_PARTS)} s")
    for label, row in rows.items():
        ratios = [f"{row[m] / ref[m]:>10.2f}" if m in ref else f"{'-':>10}" for m in ("round", "end_to_end")]
        parts = row.get("parts")
        share = f"{100 * parts['share']:>10.0f}%" if parts else f"{'-':>11}"
        split = " / ".join(f"{parts[p]:.3f}" for p in CLUSTER_PARTS) if parts else ""
        print(f"  {label:<36} {row['round']:>8.3f} {ratios[0]} {row['end_to_end']:>12.3f} {ratios[1]} {share}   "
              f"{split}")
    for label, note in notes.items():
        print(f"  {label}: not measured: {note}")


def targets(classifier: Mapping[str, Any]) -> list[str]:
    rows = classifier["rows"]
    lines = []
    reference = rows.get(HIVEMIND, {}).get("round")
    for label, limit in TARGETS.items():
        if label not in rows:
            continue
        value = rows[label]["round"] / reference if reference else None
        verdict = "-" if value is None else ("HOLDS" if value <= limit else "MISSED")
        shown = "not measured" if value is None else f"{value:.2f}"
        lines.append(f"  {label + ' <= ' + format(limit, 'g') + 'x hivemind':<44} {shown:>12}  {verdict}")
    for label in ("B-MoE sampled r=3", "B-MoE all"):
        if label not in rows:
            continue
        share = rows[label]["parts"]["share"]
        verdict = "HOLDS" if share <= COMMUNICATION_TARGET else "MISSED"
        lines.append(f"  {label + ' communication share <= 30 %':<44} {100 * share:>11.0f}%  {verdict}")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=10, help="rounds per classifier variant (mean of 2..R) [10]")
    parser.add_argument("--lm-rounds", type=int, default=6, help="rounds per language-model row (mean of 2..R) [6]")
    parser.add_argument("--no-lm", action="store_true", help="the paper's workload only")
    parser.add_argument("--no-hivemind", action="store_true", help="the bmoe rows only")
    parser.add_argument("--json", type=Path, default=None, help="also write every number measured here")
    parser.add_argument("--variants", default="traditional,sampled,all",
                        help="the bmoe rows of the paper's workload, of traditional, sampled (r = 3), all [all three]")
    args = parser.parse_args()
    chosen = [name.strip() for name in args.variants.split(",") if name.strip()]
    unknown = sorted(set(chosen) - set(VARIANT_NAMES))
    if unknown or not chosen:
        parser.error(f"--variants: unknown {', '.join(unknown) or 'nothing'}; choose of {', '.join(VARIANT_NAMES)}")
    if args.rounds < 2 or args.lm_rounds < 2:
        parser.error("--rounds and --lm-rounds must be >= 2 (round 1 pays for start-up)")
    started = time.perf_counter()

    def log(line: str) -> None:
        print(f"[{time.perf_counter() - started:6.0f} s] {line}", file=sys.stderr, flush=True)

    version, missing = (None, "left out (--no-hivemind)") if args.no_hivemind else hivemind_version()
    torch.set_num_threads(1)
    before = load()
    data = dataset()
    meta = {"data": data.name, "commit": _commit(), "date": datetime.date.today().isoformat(),
            "cores": os.cpu_count(), "load_before": before, "hivemind": version, "hivemind_missing": missing,
            "rounds": args.rounds, "lm_rounds": args.lm_rounds}
    result: dict[str, Any] = {"meta": meta}
    result["classifier"] = classifier_table(data, args.rounds, version is not None, log,
                                            [VARIANT_NAMES[name] for name in chosen])
    if not args.no_lm:
        result["lm"] = lm_table(args.lm_rounds, version is not None, log)
    meta["load_after"], meta["seconds"] = load(), round(time.perf_counter() - started, 1)
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=1) + "\n")

    print(f"\n{meta['cores']} cores, load average (1, 5, 15 min) before {before}, after {meta['load_after']}; "
          f"commit {meta['commit']}, {meta['date']}, {meta['seconds']:.0f} s in all")
    print(f"hivemind {version} (its wheel's p2pd, loopback only)" if version else f"hivemind: {missing}")
    print("round: bmoe, the validator's wall seconds (hivemind and the local step: the client's); end to end: the "
          "publisher's clock")
    print_table(f"the paper's workload ({data.name}, N=10 K=3, batches of 1000, SGD 0.01, M=10 edges): mean of "
                f"rounds 2..{args.rounds}", result["classifier"], HIVEMIND)
    print("\ntargets of issue 24:")
    print("\n".join(targets(result["classifier"])))
    if "lm" in result:
        print("\none layer's round trip on the cluster (the validator pushes a forward task's routed tokens to the "
              "edges, each (layer, expert) call's output comes back with its signed commitment):")
        for label, trip in result["lm"]["layer_round_trips"].items():
            print(f"  {label:<36} p50 {1000 * trip['p50']:7.1f} ms   p99 {1000 * trip['p99']:7.1f} ms   "
                  f"({trip['n']} layer calls)")
        print_table(f"one layer of the language model (d=128, 8 SwiGLU experts of width 256, top-2, 12 x 64 tokens):"
                    f" mean of rounds 2..{args.lm_rounds}", result["lm"], LM_MODEL)


if __name__ == "__main__":
    main()
