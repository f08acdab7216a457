"""``bmoe train``: one training run in a run directory (or on a local cluster), its settings from the flags over
a ``--config`` TOML file over the declared defaults (run/settings/); ``--print-config`` writes them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from bmoe.cli.comparison_options import comparison_options, comparison_settings
from bmoe.cli.errors import fail
from bmoe.cli.ledger_options import ledger_options, ledger_settings
from bmoe.cli.run_checks import (
    SUMMARY_COLUMNS,
    check_in_process,
    check_run_dir_free,
    checked_config,
    print_bound_in_force,
    show_mining_cost,
)
from bmoe.cli.store_options import store_options, store_settings
from bmoe.console import console, results_table, round_progress
from bmoe.run.config_file import config_toml, read_settings_file
from bmoe.run.flag_effects import check_given_settings
from bmoe.run.settings.options import given_settings, setting_options
from bmoe.run.settings.setting import TRAIN


@click.command()
@click.option("--run-dir", type=click.Path(path_type=Path), default=None,
              help="run directory (chain, store, config, metrics); required unless --cluster or --print-config")
@click.option("--cluster", type=click.Path(path_type=Path), default=None,
              help="train on the local cluster in this directory (bmoe cluster up); its settings apply")
@click.option("--config", "config_file", type=click.Path(path_type=Path), default=None,
              help="a TOML file of settings (docs/configuration.md); the flags given override it")
@click.option("--print-config", is_flag=True,
              help="write the effective settings as TOML to stdout and exit without running")
@setting_options(TRAIN)
@store_options
@ledger_options
@comparison_options
def train(run_dir: Path | None, cluster: Path | None, config_file: Path | None, print_config: bool,
          comparison: str | None, bound: float | None, update_bound: float | None, bound_from: Path | None,
          force_bound: bool, store: str | None, ipfs_api: str | None, ledger: str | None, rpc_url: str | None,
          eth_key: str | None, **settings: Any) -> None:
    """Train a B-MoE (or traditional) model; resumes a killed B-MoE run in the same --run-dir."""
    from bmoe.experiments.runs import run_store, train_run

    given = given_settings(TRAIN, settings)
    base = {**(read_settings_file(config_file) if config_file is not None else {}), **given}
    if cluster is not None:
        from bmoe.net.cluster_file import load_cluster
        from bmoe.net.publish.command import publish_command

        if load_cluster(cluster).lm is not None:
            fail(f"{cluster} is a language model's deployment: train it with `bmoe lm train --cluster {cluster}`")

        if "stall_after" in given:
            fail("on a cluster the validator watches for a stall: set it with `bmoe cluster up --stall-after N`")
        click.get_current_context().invoke(publish_command, cluster_dir=cluster,
                                           rounds=base.get("rounds", settings["rounds"]))
        return
    if run_dir is None and not print_config:
        fail("--run-dir is required (or --cluster DIR to train on a local cluster)")

    config = checked_config(**{**base,
                        **comparison_settings(comparison, bound, update_bound, bound_from, force_bound,
                                              default=base.get("comparison", "exact")),
                        **store_settings(run_dir, store or base.get("store"), ipfs_api or base.get("ipfs_api")),
                        **ledger_settings(run_dir, ledger or _ledger_of(base.get("consensus")), base.get("consensus"),
                                          rpc_url or base.get("rpc_url"), eth_key or base.get("eth_key"))})
    check_given_settings(config, given)
    if print_config:
        click.echo(config_toml(config), nl=False)
        return
    assert run_dir is not None
    check_in_process(config)
    check_run_dir_free(run_dir)
    show_mining_cost(config)
    from bmoe.run.fit import load_run_dataset
    from bmoe.run.session import Session

    data = load_run_dataset(config)
    with run_store(config) as objects, Session(config, dataset=data, run_dir=run_dir, store=objects) as session:
        print_bound_in_force(config)
        with round_progress() as track:
            summary = train_run(config, run_dir, track(f"{config.framework} training", config.rounds),
                                session=session)
    console.print(results_table(f"training: {run_dir}", [summary], SUMMARY_COLUMNS))


def _ledger_of(consensus: str | None) -> str | None:
    """The ledger a file's consensus names: an Ethereum-sealed one, else none in particular."""
    return "ethereum" if consensus == "ethereum" else None
