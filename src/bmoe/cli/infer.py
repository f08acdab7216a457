"""``bmoe infer``: serve the test set through a trained run's framework (or a cluster), sealing inference blocks.
"""

from __future__ import annotations

from pathlib import Path

import click

from bmoe.cli.errors import fail
from bmoe.cli.ledger_options import ledger_options, ledger_settings
from bmoe.cli.run_checks import (
    SUMMARY_COLUMNS,
    check_in_process,
    checked_config,
    load_run_dir_config,
)
from bmoe.cli.store_options import store_options, store_settings
from bmoe.console import console, results_table
from bmoe.run.settings.options import setting_options
from bmoe.run.settings.setting import INFER
from bmoe.verify.framework import framework_of


@click.command()
@click.argument("run_dir", type=click.Path(path_type=Path), required=False)
@click.option("--cluster", type=click.Path(path_type=Path), default=None,
              help="serve on the local cluster in this directory instead of a run directory")
@setting_options(INFER)
@click.option("--limit", type=int, default=None, help="serve only the first N test samples")
@store_options
@ledger_options
def infer(run_dir: Path | None, cluster: Path | None, malicious_ratio: float | None, attack: str | None,
          limit: int | None, fleet: str | None, store: str | None, ipfs_api: str | None, ledger: str | None,
          rpc_url: str | None, eth_key: str | None) -> None:
    """Serve the test set through the framework (steps 1-3 and 6), sealing inference blocks."""
    from bmoe.run.session import Session

    if cluster is not None:
        from bmoe.net.publish.command import publish_command

        if malicious_ratio is not None or attack is not None or fleet is not None:
            fail("on a cluster the edges' behaviours and profiles are set by `bmoe cluster up`")
        click.get_current_context().invoke(publish_command, cluster_dir=cluster, infer=True, limit=limit)
        return
    if run_dir is None:
        fail("give a RUN_DIR (or --cluster DIR)")
    assert run_dir is not None

    config = load_run_dir_config(run_dir)
    config = config.replace(**store_settings(run_dir, store, ipfs_api),
                            **ledger_settings(run_dir, ledger, None, rpc_url, eth_key))
    if not framework_of(config.framework).keeps_ledger:
        fail("only B-MoE run directories keep a ledger to serve from")
    if not (run_dir / "chain.sqlite").exists():
        fail(f"{run_dir} has no chain.sqlite: not a B-MoE run directory")
    deployed = config.replace(**{k: v for k, v in {"malicious_ratio": malicious_ratio,
                                                    "attack": attack, "fleet": fleet}.items() if v is not None})
    check_in_process(checked_config(**deployed.to_dict()))
    if limit is not None and limit < 1:
        fail(f"--limit must be >= 1, got {limit}")
    from bmoe.experiments.runs import run_store

    with run_store(config) as objects, \
            Session(config.replace(limit_test=limit) if limit else config, run_dir=run_dir, store=objects) as session:
        session.set_edge_behaviours(deployed)
        session.set_edge_profiles(deployed)
        accuracy = session.infer_test_set()
        row = {"framework": config.framework, "malicious_ratio": deployed.malicious_ratio,
               "attack": deployed.attack if deployed.malicious_edges else "none",
               "test_accuracy": accuracy, "head_hash": session.head_hash}
    console.print(results_table(f"inference: {run_dir}", [row], [SUMMARY_COLUMNS[i] for i in (0, 1, 2, 4, 7)]))
