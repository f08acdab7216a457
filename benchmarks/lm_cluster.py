"""A language model's training round on a local cluster (storage nodes, a validator, M edges as processes), with
assignment ``all`` and ``sampled``, beside the same step trained in one process without the protocol.

For each assignment the benchmark brings a deployment up (``bmoe lm cluster``, keys derived from the seed, one
storage node), publishes ``--rounds`` training rounds of the default model through it (``bmoe.net.publish.lm``,
what ``bmoe lm train --cluster`` runs), and brings it down. It prints per assignment the median round latency (the
publisher's clock, from posting a round's first task to its last task sealed; the first round, which fetches the
genesis objects, is left out), what the validator measured of the round (every edge's compute summed, the busiest
edge's per task summed, bytes moved) and the ratio of the latency to the local step's median wall time (the same
model, batches and schedule in this process, ``bmoe.lm.local_training``'s loop). Everything runs on this machine's
cores: the edges, the validator and the store share them, as they would not in a deployment.

    python benchmarks/lm_cluster.py                          # 4 edges, 6 rounds, sampled r = 2
    python benchmarks/lm_cluster.py --edges 8 --rounds 10 --replicas 3
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from bmoe.ledger.keys import load_identity
from bmoe.lm.model import build_model
from bmoe.lm.optim import adamw_step, with_moments
from bmoe.net.cluster_file import load_cluster
from bmoe.net.publish.command import ValidatorClient
from bmoe.net.publish.lm import LMDeployment, publish_lm_training
from bmoe.run.lm.batches import TRAINING, seeded_batch
from bmoe.run.lm.config import LMRunConfig
from bmoe.run.lm.settings_file import read_lm_settings
from bmoe.run.lm.text import LMText, load_text


def bmoe(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "bmoe", *args], check=True, stdout=subprocess.DEVNULL)


def cluster_rounds(root: Path, flags: list[str], rounds: int, text: LMText,
                   stats: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Bring a deployment up in ``root``, publish ``rounds`` rounds, bring it down; the rounds' records. ``stats``:
    filled with the validator's ``/stats`` (its exchange times per phase and direction among them) at the end."""
    bmoe("lm", "cluster", "--dir", str(root), "--stores", "1", "--seeded-keys", *flags)
    try:
        cluster = load_cluster(root)
        config = read_lm_settings(cluster.path(str(cluster.lm)))
        validator = cluster.by_role("validator")[0].address
        publisher = load_identity(cluster.path(cluster.publisher_key))
        deployment = LMDeployment(cluster.validator, validator, list(cluster.stores), publisher, config)
        records = publish_lm_training(deployment, text, rounds)["rounds"]
        if stats is not None:
            with ValidatorClient(cluster.validator, publisher, validator) as client:
                stats.update(client.stats())
        return records
    finally:
        bmoe("cluster", "down", "--dir", str(root))


def local_seconds(config: LMRunConfig, text: LMText, rounds: int) -> list[float]:
    """Wall seconds of each step of the same model trained in this process without the protocol."""
    model_config = config.lm.model_config(text.tokenizer.vocab_size)
    model = build_model(model_config, config.run.seed)
    params = dict(model.named_parameters())
    state = with_moments({name: p.detach().clone() for name, p in params.items()})
    torch.set_num_threads(config.run.threads)
    seconds = []
    for step in range(rounds):
        started = time.perf_counter()
        x, y = seeded_batch(config.run.seed, config.lm, text.train_ids, model_config.max_position_embeddings, step,
                            TRAINING)
        model.zero_grad()
        out = model(x, y)
        assert out.loss is not None
        out.loss.backward()
        state = adamw_step(state, {n: p.grad for n, p in params.items() if p.grad is not None}, config.lm.lr(step))
        with torch.no_grad():
            for name, p in params.items():
                p.copy_(state[name])
        seconds.append(time.perf_counter() - started)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=6, help="rounds published (the first is not measured)")
    parser.add_argument("--edges", type=int, default=4, help="edges M")
    parser.add_argument("--replicas", type=int, default=2, help="replicas r of assignment sampled")
    args = parser.parse_args()
    common = ["--edges", str(args.edges), "--difficulty", "0", "--eval-every", str(10**6), "--eval-batches", "1"]
    config = LMRunConfig.build({"validation_every": 10**6}, {"num_edges": args.edges, "difficulty": 0})
    text = load_text(config.lm)
    local = statistics.median(local_seconds(config, text, args.rounds)[1:])
    print(f"local step (no protocol, this process): median {local:.3f} s")
    print(f"{'assignment':<12} {'latency s':>10} {'x local':>8} {'edge CPU s':>11} {'busiest s':>10} {'MB moved':>9}")
    for mode, flags in (("all", ["--assignment", "all"]),
                        (f"sampled r={args.replicas}", ["--assignment", "sampled", "--replicas", str(args.replicas)])):
        with tempfile.TemporaryDirectory() as tmp:
            records = cluster_rounds(Path(tmp) / "cluster", [*common, *flags], args.rounds, text)[1:]
        latency = statistics.median(r["round_seconds"] for r in records)
        times = [r["validator_times"] or {} for r in records]
        edge_cpu = statistics.median(t.get("edges_total", 0.0) for t in times)
        busiest = statistics.median(t.get("edges", 0.0) for t in times)
        moved = statistics.median(t.get("bytes", 0.0) for t in times) / 1e6
        print(f"{mode:<12} {latency:>10.3f} {latency / local:>8.2f} {edge_cpu:>11.3f} {busiest:>10.3f} {moved:>9.1f}")


if __name__ == "__main__":
    main()
