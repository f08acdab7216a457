"""``bmoe lm cluster``: a language model's deployment on this machine (storage nodes, one validator, M edges as
processes), which ``bmoe lm train --cluster DIR`` then trains, and ``bmoe cluster status | down --dir DIR``
watches and stops (docs/lm.md, "On a cluster").

The settings are ``bmoe lm train``'s (the model, its schedule, the protocol's); they are written to ``DIR/lm.json``
(the protocol's part to ``DIR/config.json`` too) and the tokenizer, built from the cached corpus, to
``DIR/tokenizer.json``. The validator holds an ``LMSession`` over the storage nodes and the edges over HTTP
(:mod:`bmoe.net.validator.lm_service`); every edge runs the language model's expert runtime. One PoW validator of
the B-MoE framework for now.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from bmoe.cli.comparison_options import comparison_options, comparison_settings
from bmoe.cli.errors import fail
from bmoe.cli.finite import FiniteFloatRange
from bmoe.cli.lm.options import cache_dir_option, lm_options, lm_values
from bmoe.run.lm.config import PROTOCOL_SETTINGS
from bmoe.run.settings.options import given_settings, options_of
from bmoe.run.settings.registry import SETTINGS
from bmoe.run.settings.setting import TRAIN


@click.command("cluster")
@click.option("--dir", "root", type=click.Path(path_type=Path), required=True, help="the cluster's directory")
@cache_dir_option
@click.option("--stores", type=click.IntRange(min=1), default=2, show_default=True, help="storage nodes")
@click.option("--replication", type=click.IntRange(min=1), default=None, help="copies per blob [min(2, stores)]")
@click.option("--edge-timeout", type=FiniteFloatRange(min=0.01), default=30.0, show_default=True,
              help="seconds the validator waits for edges per step")
@click.option("--start-timeout", type=FiniteFloatRange(min=1), default=60.0, show_default=True,
              help="seconds each process has to become ready")
@click.option("--seeded-keys", is_flag=True,
              help="derive every key from --seed, as an in-process run does (a reproducible simulation: its chain is "
                   "the in-process run's) [fresh random keys]")
@lm_options
@options_of(tuple(SETTINGS[name] for name in PROTOCOL_SETTINGS), TRAIN)
@comparison_options
def cluster_command(root: Path, cache_dir: Path | None, stores: int, replication: int | None, edge_timeout: float,
                    start_timeout: float, seeded_keys: bool, comparison: str | None, bound: float | None,
                    update_bound: float | None, bound_from: Path | None, force_bound: bool, **values: Any) -> None:
    """Start a language model's deployment on this machine: storage nodes, one validator and the edges."""
    from bmoe.cli.cluster import announce_row, publisher_auth
    from bmoe.net.cluster.launch import LanguageModelRun, plan, refuse_running, start
    from bmoe.net.fleet_check import MixedFleet, check_fleet
    from bmoe.run.lm.config import LMRunConfig
    from bmoe.run.lm.text import load_text
    from bmoe.verify.framework import framework_of

    run = {**given_settings(TRAIN, values), **comparison_settings(comparison, bound, update_bound, bound_from,
                                                                  force_bound)}
    config = LMRunConfig.build(lm_values(values), run)
    if config.run.consensus != "pow":
        fail(f"a language model's deployment has one validator sealing by proof of work for now; --consensus "
             f"{config.run.consensus} runs in process: bmoe lm train --consensus {config.run.consensus}")
    if not framework_of(config.run.framework).keeps_ledger:
        fail("a language model's deployment runs B-MoE (its validator keeps the ledger); train the traditional "
             "framework in process: bmoe lm train --framework traditional")
    try:
        check_fleet(config.run)  # honest edges that cannot agree bit for bit under exact: refused
    except MixedFleet as exc:
        fail(str(exc))
    replication = replication if replication is not None else min(2, stores)
    if replication > stores:
        fail(f"--replication {replication} needs at least {replication} storage nodes, got {stores}")
    if root.exists() and not root.is_dir():
        fail(f"--dir {root} exists and is not a directory")
    refuse_running(root)
    if any(root.glob("validator-*/chain.sqlite")):
        fail(f"{root} holds a stopped deployment's chain, which a language model's validator does not resume: "
             "choose a new --dir")
    text = load_text(config.lm, cache_dir)
    settings = (json.dumps(config.to_dict(), indent=1, sort_keys=True) + "\n").encode()
    cluster = plan(root.resolve(), config.run, (), 0, stores, replication, edge_timeout, 0, seeded_keys=seeded_keys,
                   lm=LanguageModelRun(settings, text.tokenizer.to_bytes()))
    cluster.save()
    s: Any = config.lm
    attackers = config.run.malicious_edges
    click.echo(f"bmoe lm cluster: starting {stores} storage node(s), 1 validator, {config.run.edges_in_play} edges "
               f"({attackers} running {config.run.attack if attackers else 'no attack'}) for a {s.layers}-layer "
               f"model of {s.lm_experts} experts a layer in {cluster.root}")
    sys.stdout.flush()
    start(cluster, publisher_auth(cluster), start_timeout, announce_row(cluster))
    click.echo(f"ready: validator {cluster.validator}; train with `bmoe lm train --cluster {cluster.root} --steps N`; "
               f"stop with `bmoe cluster down --dir {cluster.root}`")
