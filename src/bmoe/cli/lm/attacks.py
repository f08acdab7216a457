"""``bmoe lm attacks``: a language model among colluding attackers, B-MoE against the traditional deployment."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from bmoe.cli.errors import fail
from bmoe.cli.finite import FiniteFloatRange
from bmoe.cli.lm.options import cache_dir_option, lm_options, lm_values
from bmoe.console import console, err_console, results_table


@click.command("attacks")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="where the table and plots go")
@cache_dir_option
@click.option("--edges", type=click.IntRange(min=1, max=1024), default=10, show_default=True,
              help="B-MoE's edges M (traditional: one per (layer, expert))")
@click.option("--ratio", type=FiniteFloatRange(min=0.0, max=1.0, max_open=True), default=0.3, show_default=True,
              help="share of colluding attackers")
@click.option("--probability", type=FiniteFloatRange(min=0.0, max=1.0), default=0.2, show_default=True,
              help="each attacker strikes a call with this probability")
@click.option("--seed", type=int, default=0, show_default=True)
@lm_options
def attacks_command(out: Path, cache_dir: Path | None, edges: int, ratio: float, probability: float, seed: int,
                    **values: Any) -> None:
    """Train a language model among colluding attackers through B-MoE and the traditional deployment; plot both."""
    from bmoe.experiments.lm_attacks import AttackSettings, clean_model_kept, run_attacks
    from bmoe.run.lm.config import LMSettings
    from bmoe.run.lm.text import load_text

    lm = lm_values(values)
    if out.exists() and not out.is_dir():
        fail(f"--out {out} is not a directory")
    settings = AttackSettings(lm, edges, ratio, probability, seed)
    text = load_text(LMSettings(**lm).validate(), cache_dir)
    units = run_attacks(settings, text, out, lambda name: err_console.print(f"training {name}"))
    rows = [{"framework": u["framework"], "reading": u["reading"], "val": f"{u['curve'][-1]['loss']:.4f}",
             "records": u["misbehaviour"]} for u in units]
    console.print(results_table("validation loss at the end", rows, [
        ("framework", "framework"), ("reading", "attack"), ("val", "val loss (nats/token)"),
        ("records", "misbehaviour records")]))
    kept = clean_model_kept(units)
    console.print("B-MoE among attackers ends on its clean run's model: " +
                  ", ".join(f"{reading} {'yes' if same else 'NO'}" for reading, same in kept.items()))
    console.print(f"table and plots in {out}")
    if not all(kept.values()):
        fail("an attacked B-MoE run did not end on the clean run's model")
