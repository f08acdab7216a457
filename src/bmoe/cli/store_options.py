"""``--store`` and ``--ipfs-api`` of ``bmoe train`` and ``bmoe infer``: where a run directory's objects live.

Owns the two options and the settings they give: the flags, else what the run directory recorded in its
``config.json`` (``store``, ``ipfs_api``: execution settings, outside the config's hash, so a run's chain is
the same on every store), else the run directory's own ``store/``. A run is resumed on the store it began
on: another ``--store`` is refused, since its objects are there. ``experiments/runs.run_store`` opens the
store the settings name.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from bmoe.run.run_dir import RunDirError, recorded_settings
from bmoe.run.settings.store import STORES


def store_options(command: Callable[..., None]) -> Callable[..., None]:
    """Add ``--store`` and ``--ipfs-api`` to ``command``."""
    command = click.option("--ipfs-api", default=None, metavar="URL",
                           help="--store ipfs: the node's kubo HTTP RPC [the run's, else http://127.0.0.1:5001]")(command)
    return click.option("--store", type=click.Choice(STORES), default=None,
                        help="where the run's objects live: directory (RUN_DIR/store) or ipfs (an IPFS node's "
                             "RPC, --ipfs-api) [the run's, else directory]")(command)


def store_settings(run_dir: Path | None, store: str | None, ipfs_api: str | None) -> dict[str, Any]:
    """The ``store`` / ``ipfs_api`` settings of a run in ``run_dir``: the flags, else the recorded ones (none
    without a run directory: ``bmoe train --print-config``)."""
    recorded = recorded_settings(run_dir) if run_dir is not None else None
    kind = store or (recorded.store if recorded is not None else "directory")
    if recorded is not None and kind != recorded.store:
        where = f" at {recorded.ipfs_api}" if recorded.store == "ipfs" and recorded.ipfs_api else ""
        raise RunDirError(f"{run_dir} keeps its objects in store {recorded.store}{where}: give --store "
                          f"{recorded.store}, or use a new --run-dir")
    if ipfs_api is not None and kind != "ipfs":
        raise RunDirError(f"--ipfs-api needs --store ipfs (the store in force is {kind})")
    if kind == "ipfs" and ipfs_api is None and recorded is not None:
        ipfs_api = recorded.ipfs_api
    return {"store": kind, "ipfs_api": ipfs_api if kind == "ipfs" else None}
