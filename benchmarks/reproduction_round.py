"""The reproduction's rounds: CPU seconds per round of each kind, before/after, extrapolated to the full run.

``bmoe reproduce all`` is made of a few kinds of round (settings.py, units.py, training_gap.py): B-MoE and
traditional training rounds of 1000 samples among clean, transient and persistent attackers, serving tasks of
100 test samples among each share of attackers, and test-set evaluations. This benchmark runs a sample of
each kind at the reproduction's settings (Fashion-MNIST when installed, N = M = 10, K = 3, MLP experts, one
thread) in a child process per source tree, measures the child's CPU seconds per round (``process_time``:
the 2-core machine is shared, so wall seconds would measure the neighbours), and multiplies by how many
rounds of each kind the full reproduction runs. With ``--before TREE`` it runs the same samples against
another source tree (e.g. ``git archive <commit> src | tar -x -C /tmp/before``), interleaved, and prints
the ratio, and whether every sample ended on the same head hash, model and served answers.

    python benchmarks/reproduction_round.py                          # this tree: CPU per round, extrapolated
    python benchmarks/reproduction_round.py --before /tmp/before     # before/after, interleaved
    python benchmarks/reproduction_round.py --profile bmoe-persistent-0.3 --before /tmp/before  # by category
"""

from __future__ import annotations

import argparse
import cProfile
import hashlib
import importlib
import json
import os
import pstats
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FASHION = Path("/usr/share/datasets/fashion-mnist")
SERVE_BATCH = 100  # the reproduction's serve_batch


@dataclass(frozen=True)
class Sample:
    """One kind of round: ``train`` rounds of 1000 samples, or serving tasks of 100 among ``ratio``."""

    name: str
    framework: str
    reading: str
    ratio: float
    serve: bool = False

    @property
    def kind(self) -> str:
        return "serve" if self.serve else "train"


SAMPLES = (
    Sample("bmoe-clean", "bmoe", "transient", 0.0),
    Sample("bmoe-transient-0.3", "bmoe", "transient", 0.3),
    Sample("bmoe-persistent-0.3", "bmoe", "persistent", 0.3),
    Sample("traditional-0.3", "traditional", "transient", 0.3),
    Sample("serve-bmoe-transient-0.3", "bmoe", "transient", 0.3, serve=True),
    Sample("serve-bmoe-transient-0.7", "bmoe", "transient", 0.7, serve=True),
    Sample("serve-bmoe-persistent-0.3", "bmoe", "persistent", 0.3, serve=True),
    Sample("serve-bmoe-persistent-0.7", "bmoe", "persistent", 0.7, serve=True),
    Sample("serve-traditional-transient-0.5", "traditional", "transient", 0.5, serve=True),
    Sample("serve-traditional-persistent-0.5", "traditional", "persistent", 0.5, serve=True),
)

# Rounds of each kind in `bmoe reproduce all` at full scale (T = 1500, 4 training ratios, 2 readings, 10 serving
# ratios of 100 tasks each, the gap's 9 traditional runs of 300 rounds), and which sample stands for them.
FULL_COUNTS: dict[str, tuple[int, str]] = {
    "B-MoE training, clean": (1500, "bmoe-clean"),
    "B-MoE training, transient attackers (0.1, 0.3, 0.4)": (3 * 1500, "bmoe-transient-0.3"),
    "B-MoE training, persistent attackers (0.1, 0.3, 0.4)": (3 * 1500, "bmoe-persistent-0.3"),
    "traditional training (4 ratios, gap's 9 runs)": (4 * 1500 + 9 * 300, "traditional-0.3"),
    "B-MoE serving, transient (10 ratios x 100 tasks)": (500, "serve-bmoe-transient-0.3"),
    "B-MoE serving, transient (upper ratios)": (500, "serve-bmoe-transient-0.7"),
    "B-MoE serving, persistent (10 ratios x 100 tasks)": (500, "serve-bmoe-persistent-0.3"),
    "B-MoE serving, persistent (upper ratios)": (500, "serve-bmoe-persistent-0.7"),
    "traditional serving, transient": (1000, "serve-traditional-transient-0.5"),
    "traditional serving, persistent (and 2 noise scales)": (1200, "serve-traditional-persistent-0.5"),
    "test-set evaluations (every 50 rounds, and the final)": (11 * 31 + 9 * 7, "evaluate"),
}


def _dataset() -> Any:
    from bmoe.data import load_dataset, make_synthetic

    if FASHION.is_dir():
        return load_dataset("fashion-mnist", None, 0, None, None)
    return make_synthetic(n_train=20000, n_test=10000, num_classes=10, shape=(1, 28, 28), seed=0)


def _run_module(name: str) -> Any:
    """``bmoe.run.NAME``, or ``bmoe.protocol.NAME`` in a source tree from before run wiring left protocol/
    (``--before`` may name one)."""
    try:
        return importlib.import_module(f"bmoe.run.{name}")
    except ModuleNotFoundError:
        return importlib.import_module(f"bmoe.protocol.{name}")


def _config(data: Any, sample: Sample, rounds: int) -> Any:
    from bmoe.edge.attacks.readings import READINGS
    RunConfig = _run_module("config").RunConfig

    config = RunConfig(dataset=data.name, num_experts=10, top_k=3, num_edges=10, expert="mlp", lr=0.01,
                       rounds=rounds, batch_size=1000, eval_every=10**6, attack=READINGS[sample.reading],
                       collude=True, attack_params={"probability": 0.2, "noise_std": 0.5}, seed=0,
                       framework=sample.framework, malicious_ratio=0.0 if sample.serve else sample.ratio, threads=1)
    return config.replace(consensus="pow", validators=1) if sample.framework == "traditional" else config


def _fingerprint(session: Any, served: list[int]) -> str:
    """What must not change: the head hash, the model the ledger names, the served answers."""
    state = session.node.view()
    seen = json.dumps([session.head_hash, state.gate_cid, list(state.expert_cids), served])
    return hashlib.sha256(seen.encode()).hexdigest()[:16]


def run_sample(sample: Sample, rounds: int, data: Any, profiler: cProfile.Profile | None = None) -> dict[str, Any]:
    """CPU seconds per round of ``sample`` (after two warm-up rounds), and its fingerprint; ``profiler``
    profiles the measured rounds."""
    from bmoe.edge.attacks.readings import READINGS
    Session = _run_module("session").Session

    config = _config(data, sample, rounds + 2)
    with Session(config, dataset=data, keep_objects=False, keep_evidence=False) as session:
        served: list[int] = []
        if not sample.serve:
            session.train(rounds=2)
            started = _start(profiler)
            session.train(rounds=rounds + 2)
        else:
            session.train(rounds=2)
            session.set_edge_behaviours(config.replace(malicious_ratio=sample.ratio, attack=READINGS[sample.reading]))
            x, y = data.x_test, data.y_test
            session.infer(x[:SERVE_BATCH], y[:SERVE_BATCH])
            started = _start(profiler)
            for task in range(1, rounds + 1):
                rows = slice(task * SERVE_BATCH, (task + 1) * SERVE_BATCH)
                outcome = session.infer(x[rows], y[rows])
                served.append(int((outcome.logits.argmax(1) == y[rows]).sum()))
        cpu = time.process_time() - started
        if profiler is not None:
            profiler.disable()
        if not sample.serve:  # training evaluated the model after its last round: counted apart ("evaluate")
            again = time.process_time()
            session.evaluate()
            cpu -= time.process_time() - again
        cpu /= rounds
        phases = _phases(session.history[-rounds:])
        return {"cpu_per_round": cpu, "fingerprint": _fingerprint(session, served), "phases": phases}


def _start(profiler: cProfile.Profile | None) -> float:
    if profiler is not None:
        profiler.enable()
    return time.process_time()


def run_evaluate(data: Any, repeats: int) -> dict[str, Any]:
    Session = _run_module("session").Session

    config = _config(data, SAMPLES[0], 1)
    with Session(config, dataset=data, keep_objects=False, keep_evidence=False) as session:
        session.train(rounds=1)
        session.evaluate()
        started = time.process_time()
        accuracy = [session.evaluate() for _ in range(repeats)]
        return {"cpu_per_round": (time.process_time() - started) / repeats,
                "fingerprint": hashlib.sha256(json.dumps(accuracy).encode()).hexdigest()[:16], "phases": {}}


def _phases(history: list[dict[str, Any]]) -> dict[str, float]:
    """Mean wall seconds of each step of the round, as the round observer measured them."""
    keys = ("time_gate", "time_compute", "time_verify", "time_loss", "time_update", "time_consensus")
    return {key[5:]: sum(r[key] for r in history) / max(1, len(history)) for key in keys}


def child(names: list[str], rounds: int, serve_tasks: int) -> None:
    """Run the named samples in this process (one thread, as the reproduction's workers) and print JSON."""
    import torch

    torch.set_num_threads(1)
    data = _dataset()
    out = {}
    for sample in SAMPLES:
        if sample.name in names:
            out[sample.name] = run_sample(sample, serve_tasks if sample.serve else rounds, data)
    if "evaluate" in names:
        out["evaluate"] = run_evaluate(data, 5)
    print(json.dumps(out))


def _spawn(tree: Path, names: list[str], rounds: int, serve_tasks: int) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(tree / "src")}
    command = [sys.executable, __file__, "--child", ",".join(names), "--rounds", str(rounds),
               "--serve-tasks", str(serve_tasks)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.exit(f"the child for {tree} failed:\n{done.stderr[-3000:]}")
    return dict(json.loads(done.stdout.splitlines()[-1]))


def extrapolate(per_round: dict[str, float]) -> tuple[list[tuple[str, int, float]], float]:
    rows = [(label, count, count * per_round[name]) for label, (count, name) in FULL_COUNTS.items()]
    return rows, sum(seconds for _, _, seconds in rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, help="a source tree (holding src/) to compare against")
    parser.add_argument("--rounds", type=int, default=12, help="training rounds per sample (after 2 warm-up)")
    parser.add_argument("--serve-tasks", type=int, default=30, help="serving tasks per sample")
    parser.add_argument("--repeat", type=int, default=1, help="interleaved runs per tree (the least CPU is kept)")
    parser.add_argument("--only", default="", help="comma-separated sample names (default: all)")
    parser.add_argument("--profile", help="print the cProfile of one sample in this process")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--child-profile", help=argparse.SUPPRESS)
    args = parser.parse_args()
    names = args.only.split(",") if args.only else [s.name for s in SAMPLES] + ["evaluate"]
    if args.child is not None:
        child(args.child.split(","), args.rounds, args.serve_tasks)
        return
    if args.child_profile is not None:
        child_profile(args.child_profile, args.rounds, args.serve_tasks)
        return
    here = Path(__file__).resolve().parents[1]
    trees = {"after": here} if args.before is None else {"before": args.before.resolve(), "after": here}
    if args.profile:
        _profile(args.profile, trees, args.rounds, args.serve_tasks)
        return
    best: dict[str, dict[str, Any]] = {label: {} for label in trees}
    for _ in range(args.repeat):
        for label, tree in trees.items():  # interleaved: before, after, before, after, ...
            for name, result in _spawn(tree, names, args.rounds, args.serve_tasks).items():
                kept = best[label].get(name)
                if kept is None or result["cpu_per_round"] < kept["cpu_per_round"]:
                    best[label][name] = result
    _report(best, names, args)


def _report(best: dict[str, dict[str, Any]], names: list[str], args: argparse.Namespace) -> None:
    print(f"CPU seconds per round, one thread, least of {args.repeat} run(s) per tree "
          f"({args.rounds} training rounds, {args.serve_tasks} serving tasks per sample)")
    labels = list(best)
    print("| sample | " + " | ".join(labels) + (" | after / before | same result |" if len(labels) == 2 else " |"))
    print("|---|" + "---|" * len(labels) + ("---|---|" if len(labels) == 2 else ""))
    for name in names:
        cells = [f"{best[label][name]['cpu_per_round']:.4f}" for label in labels]
        line = f"| {name} | " + " | ".join(cells) + " |"
        if len(labels) == 2:
            before, after = best["before"][name], best["after"][name]
            line += (f" {after['cpu_per_round'] / before['cpu_per_round']:.2f} | "
                     f"{'yes' if before['fingerprint'] == after['fingerprint'] else 'NO'} |")
        print(line)
    if set(names) >= {name for _, name in FULL_COUNTS.values()}:
        print("\nThe full reproduction's units, extrapolated (CPU seconds = rounds x CPU per round):")
        totals = {label: extrapolate({n: r["cpu_per_round"] for n, r in best[label].items()}) for label in labels}
        print("| rounds of | count | " + " | ".join(labels) + " |")
        print("|---|---|" + "---|" * len(labels))
        for i, (label, count, _) in enumerate(totals[labels[0]][0]):
            print(f"| {label} | {count} | " + " | ".join(f"{totals[t][0][i][2]:.0f}" for t in labels) + " |")
        print("| **all units, CPU seconds** | | " + " | ".join(f"**{totals[t][1]:.0f}**" for t in labels) + " |")
        print("| on 2 workers (minutes, CPU / 2 / 60) | | "
              + " | ".join(f"{totals[t][1] / 120:.1f}" for t in labels) + " |")
    phases = {name: best[labels[-1]][name]["phases"] for name in names if best[labels[-1]][name]["phases"]}
    if phases:
        print(f"\nWall seconds per step of the round ({labels[-1]}; the machine's load included):")
        steps = list(next(iter(phases.values())))
        print("| sample | " + " | ".join(steps) + " |")
        print("|---|" + "---|" * len(steps))
        for name, split in phases.items():
            print(f"| {name} | " + " | ".join(f"{split[s]:.4f}" for s in steps) + " |")


# Where a round's CPU goes: each profiled function's own time, by the first category whose pattern it matches.
CATEGORIES = (
    ("expert and gate GEMMs (forward, backward)", ("_nn.linear", "run_backward", "conv", "relu", "addmm", "mm}")),
    ("SHA-256 (CIDs, digests, PoW)", ("openssl_sha256", "hexdigest")),
    ("safetensors encode and decode, copies", ("tensors.py", "safetensors", "tobytes", "'join'", "frombuffer")),
    ("canonical JSON", ("encoding.py", "json/")),
    ("Ed25519 signatures", ("_sodium", "nacl")),
    ("building expert modules", ("experts.py", "module.py", "linear.py", "init.py", "_device.py", "overrides.py")),
    ("finiteness checks", ("isfinite", "'any'", "'sum'")),
    ("CID text (base32)", ("base64", "cid.py")),
    ("attack noise", ("randn", "gaussian")),
)


def _categories(stats: pstats.Stats, rounds: int) -> dict[str, float]:
    totals = dict.fromkeys([label for label, _ in CATEGORIES] + ["everything else"], 0.0)
    for (path, line, function), entry in stats.stats.items():  # type: ignore[attr-defined]
        where = f"{path}:{line}({function})"
        label = next((label for label, patterns in CATEGORIES if any(p in where for p in patterns)), "everything else")
        totals[label] += entry[2] / rounds  # own time
    return totals


def child_profile(name: str, rounds: int, serve_tasks: int) -> None:
    """Profile one sample in this process; print its own times by category, per round, as JSON."""
    import torch

    torch.set_num_threads(1)
    data = _dataset()
    sample = next(s for s in SAMPLES if s.name == name)
    count = serve_tasks if sample.serve else rounds
    profiler = cProfile.Profile()
    run_sample(sample, count, data, profiler)
    print(json.dumps(_categories(pstats.Stats(profiler), count)))


def _profile(name: str, trees: dict[str, Path], rounds: int, serve_tasks: int) -> None:
    """The profile of one sample's measured rounds (training's last evaluation included), by category, in each
    tree."""
    if not any(s.name == name for s in SAMPLES):
        sys.exit(f"no sample {name!r}; one of {', '.join(s.name for s in SAMPLES)}")
    columns = {}
    for label, tree in trees.items():
        env = {**os.environ, "PYTHONPATH": str(tree / "src")}
        command = [sys.executable, __file__, "--child-profile", name, "--rounds", str(rounds),
                   "--serve-tasks", str(serve_tasks)]
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            sys.exit(f"the profile in {tree} failed:\n{done.stderr[-3000:]}")
        columns[label] = json.loads(done.stdout.splitlines()[-1])
    print(f"{name}: CPU seconds per round under cProfile, each function's own time by category")
    print("| category | " + " | ".join(columns) + " |")
    print("|---|" + "---|" * len(columns))
    for category in next(iter(columns.values())):
        print(f"| {category} | " + " | ".join(f"{c[category]:.4f}" for c in columns.values()) + " |")
    print("| **all** | " + " | ".join(f"**{sum(c.values()):.4f}**" for c in columns.values()) + " |")


if __name__ == "__main__":
    main()
