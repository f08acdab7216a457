"""``bmoe sweep-sampling``: validate the flags (all before any work; nothing written on a refusal), run
the sweep's units (reusing finished ones in ``--out``), write the report."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Any

import click

from bmoe.console import console
from bmoe.experiments.sampling_sweep.report import write_report
from bmoe.experiments.sampling_sweep.sweep import SweepSettings, Unit, run_sweep
from bmoe.run.config import ConfigError
from bmoe.run.fit import check_fits, load_run_dataset


class SweepInputError(click.ClickException):
    """Bad input to ``bmoe sweep-sampling``: one line, exit status 2."""

    exit_code = 2


def _numbers(flag: str, text: str, kind: type) -> tuple[Any, ...]:
    try:
        values = tuple(kind(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise SweepInputError(f"{flag} must be comma-separated {kind.__name__}s, got {text!r}") from None
    if not values:
        raise SweepInputError(f"{flag} is empty")
    if len(set(values)) != len(values):
        raise SweepInputError(f"{flag} repeats a value: {text!r}")
    return tuple(sorted(values))


def _params(pairs: tuple[str, ...]) -> dict[str, float]:
    params = {"probability": 1.0}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        try:
            params[key] = float(value)
        except ValueError:
            key = ""
        if not sep or not key:
            raise SweepInputError(f"--attack-param must look like NAME=NUMBER, got {pair!r}")
    return params


def check_settings(settings: SweepSettings) -> None:
    """Refuse a sweep that cannot run, in one line, before anything is written."""
    for f in settings.ratios:
        if not 0 < f < 1:
            raise SweepInputError(f"--ratios: every colluding fraction must be in (0, 1), got {f:g}")
    for r in settings.replicas:
        if not 1 <= r <= settings.edges:
            raise SweepInputError(f"--replicas: every r must be in [1, M = {settings.edges}], got {r}")
    for name, value in (("--rounds", settings.rounds), ("--workers", settings.workers)):
        if value < 1:
            raise SweepInputError(f"{name} must be >= 1, got {value}")
    try:
        configs = [unit.config(settings) for unit in settings.units()]
        data = load_run_dataset(configs[0])
        for config in configs:
            check_fits(config, data)
    except (ConfigError, ValueError) as err:
        raise SweepInputError(str(err)) from None


@click.command()
@click.option("--ratios", default="0.1,0.2,0.3,0.4", show_default=True,
              help="colluding fractions f of the M edges (comma-separated)")
@click.option("--replicas", default="1,2,3,4,5", show_default=True,
              help="sampled replicas r per (task, expert) (comma-separated)")
@click.option("--rounds", type=int, default=150, show_default=True, help="training rounds per run (paper: 1500)")
@click.option("--dataset", type=click.Choice(["digits", "fashion-mnist", "cifar10", "synthetic"]), default="digits",
              show_default=True)
@click.option("--data-dir", type=click.Path(path_type=Path), default=None, help="directory holding the dataset")
@click.option("--batch-size", type=int, default=100, show_default=True, help="samples per task (paper: 1000)")
@click.option("--lr", type=float, default=0.1, show_default=True, help="SGD rate (paper, Fashion-MNIST: 0.01)")
@click.option("--experts", type=int, default=10, show_default=True, help="N")
@click.option("--top-k", type=int, default=3, show_default=True, help="K")
@click.option("--edges", type=int, default=10, show_default=True, help="M")
@click.option("--hidden", type=int, default=256, show_default=True, help="experts' hidden units")
@click.option("--expert", default="mlp", show_default=True, help="mlp | cnn")
@click.option("--attack", default="gaussian", show_default=True, help="the colluders' behaviour")
@click.option("--attack-param", multiple=True, help="NAME=NUMBER (repeatable); probability defaults to 1: "
              "colluders manipulate every expert they compute")
@click.option("--limit-test", type=int, default=None, help="test samples used (default: all)")
@click.option("--serve/--no-serve", default=True, show_default=True,
              help="also serve the test set through the framework among the attackers")
@click.option("--workers", type=int, default=2, show_default=True, help="runs in parallel")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--out", type=click.Path(path_type=Path), required=True,
              help="output directory; finished runs already in it are reused")
def sweep_sampling_command(ratios: str, replicas: str, rounds: int, dataset: str, data_dir: Path | None,
                           batch_size: int, lr: float, experts: int, top_k: int, edges: int, hidden: int,
                           expert: str, attack: str, attack_param: tuple[str, ...], limit_test: int | None,
                           serve: bool, workers: int, seed: int, out: Path) -> None:
    """Accuracy under a colluding attack with r sampled replicas against `all`, and manipulated results
    accepted against the bound C(c, r)/C(M, r)."""
    settings = SweepSettings(ratios=_numbers("--ratios", ratios, float), replicas=_numbers("--replicas", replicas, int),
                             dataset=dataset, data_dir=None if data_dir is None else str(data_dir), rounds=rounds,
                             batch_size=batch_size, lr=lr, num_experts=experts, top_k=top_k, edges=edges,
                             hidden=hidden, attack=attack, attack_params=_params(attack_param), limit_test=limit_test,
                             serve=serve, seed=seed, workers=workers)
    if out.exists() and not out.is_dir():
        raise SweepInputError(f"--out {out} exists and is not a directory")
    check_settings(settings)
    command = "bmoe sweep-sampling " + shlex.join(sys.argv[2:]) if sys.argv[1:2] == ["sweep-sampling"] \
        else "bmoe sweep-sampling"
    total = len(settings.units())
    done = [0]

    def report(unit: Unit, row: dict[str, Any], reused: bool) -> None:
        done[0] += 1
        served = "" if row["served_accuracy"] is None else f", served {100 * row['served_accuracy']:.1f} %"
        console.print(f"[{done[0]}/{total}] {unit.name}{' (reused)' if reused else ''}: test "
                      f"{100 * row['test_accuracy']:.1f} %{served}; manipulated accepted {row['manipulated']}/"
                      f"{row['decisions']} = {row['escape_rate']:.3g} (bound {row['bound']:.3g}); "
                      f"{row['seconds']:.0f} s", highlight=False, soft_wrap=True)

    rows = run_sweep(settings, out, report)
    write_report(out, settings, rows, command)
    console.print(f"table and plot in {out} (sweep.csv, sweep.json, SUMMARY.md, sweep.png)", highlight=False)
