"""``bmoe reproduce``: the paper's figures under both readings of its attack (experiments/reproduction).
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from bmoe.cli.errors import fail
from bmoe.cli.run_checks import (
    check_run_dir_free,
)
from bmoe.console import console, err_console


@click.command()
@click.argument("figure", type=click.Choice(["fig2", "fig4a", "fig4b", "fig4c", "gap", "all"]))
@click.option("--dataset", default="fashion-mnist", show_default=True, help="fashion-mnist | cifar10 | digits")
@click.option("--data-dir", type=click.Path(path_type=Path), default=None, help="directory holding the dataset")
@click.option("--quick", is_flag=True, help="fewer rounds and test samples, same shapes of result (<= 5 min)")
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="output directory [default: runs/reproduction-DATASET[-quick]]")
@click.option("--rounds", type=int, default=None, help="override the number of training rounds")
@click.option("--workers", type=int, default=2, show_default=True, help="runs in parallel")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--noise-std", type=float, default=0.5, show_default=True, help="Gaussian attack's noise scale")
@click.option("--bandwidth-mbps", type=float, default=100.0, show_default=True, help="Fig. 4b link model")
@click.option("--block-interval", type=float, default=0.0, show_default=True,
              help="Fig. 4b: modelled seconds per block on top of the consensus measured")
@click.option("--consensus", default="pow", show_default=True, help="pow | pbft: the engine sealing B-MoE's blocks")
@click.option("--validators", type=int, default=4, show_default=True, help="PBFT validators")
@click.option("--message-delay", type=float, default=0.01, show_default=True, help="PBFT one-way delay (s)")
@click.option("--cluster", is_flag=True,
              help="Fig. 4b: also measure B-MoE (all, sampled r = 2 and 3) and traditional on a local cluster "
              "of processes (fig4b_cluster.*)")
@click.option("--cluster-rounds", type=int, default=None, help="training rounds per variant on the cluster [10; "
              "--quick: 5]")
def reproduce(figure: str, dataset: str, data_dir: Path | None, quick: bool, out: Path | None, rounds: int | None,
              workers: int, seed: int, noise_std: float, bandwidth_mbps: float, block_interval: float,
              consensus: str, validators: int, message_delay: float, cluster: bool, cluster_rounds: int | None) -> None:
    """Reproduce the paper's figures 2, 4a, 4b and 4c under both readings of its attack, and the training-gap
    experiment (gap), with plots, CSV/JSON and REPORT.md; resumes."""
    import dataclasses

    from bmoe.experiments.reproduction.reproduce import reproduce as run_reproduction
    from bmoe.experiments.reproduction.settings import FIGURES, LatencyModel, ReproSettings
    from bmoe.experiments.reproduction.settings import quick as quick_settings
    from bmoe.ledger.sealing import validators_supported

    if dataset not in ("fashion-mnist", "cifar10", "digits"):
        fail(f"reproduce supports --dataset fashion-mnist, cifar10 or digits, got {dataset!r}")
    for name, value in (("--workers", workers), ("--rounds", rounds if rounds is not None else 1)):
        if value < 1:
            fail(f"{name} must be >= 1")
    if bandwidth_mbps <= 0 or block_interval < 0 or noise_std < 0:
        fail("--bandwidth-mbps must be > 0, --block-interval and --noise-std >= 0")
    if consensus not in ("pow", "pbft") or validators < 1 or message_delay <= 0:
        fail("--consensus must be pow or pbft, --validators >= 1 and --message-delay > 0")
    if (cluster or cluster_rounds is not None) and figure not in ("fig4b", "all"):
        fail("--cluster measures Fig. 4b: use it with fig4b or all")
    if cluster_rounds is not None and (not cluster or cluster_rounds < 2):
        fail("--cluster-rounds needs --cluster and at least 2 rounds (round 1 pays for start-up)")
    if cluster and consensus == "pbft" and not validators_supported(consensus, validators, one_process_each=True):
        fail("--cluster with --consensus pbft needs --validators 4 or more (one process each)")
    settings = ReproSettings(dataset=dataset, data_dir=None if data_dir is None else str(data_dir), seed=seed,
                             workers=workers, noise_std=noise_std, consensus=consensus, validators=validators,
                             message_delay=message_delay, latency=LatencyModel(bandwidth_mbps, block_interval))
    if dataset == "digits":
        settings = dataclasses.replace(settings, batch_size=100, rounds=300, serve_batch=20)
    if quick:
        settings = quick_settings(settings)
        if dataset == "digits":  # its 359 test samples are fewer than the quick limit: use them all
            settings = dataclasses.replace(settings, limit_test=None, serve_batch=20)
    if rounds is not None:
        settings = dataclasses.replace(settings, rounds=rounds, eval_every=max(1, min(settings.eval_every, rounds)))
    target = out if out is not None else Path(f"runs/reproduction-{dataset}{'-quick' if quick else ''}")
    check_run_dir_free(target)
    figures = FIGURES if figure == "all" else (figure,)
    command = "bmoe reproduce " + " ".join(sys.argv[2:]) if len(sys.argv) > 2 else "bmoe reproduce"
    measured_rounds = (cluster_rounds or (5 if quick else 10)) if cluster else None
    claims = run_reproduction(settings, figures, target, err_console, command, cluster_rounds=measured_rounds)
    console.print(f"figures, tables and REPORT.md in {target}")
    for name, ok in claims.get("checks", {}).items():
        console.print(f"  [{'green' if ok else 'red'}]{'holds' if ok else 'FAILS'}[/]  {name}")
