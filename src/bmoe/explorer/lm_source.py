"""A language model's run directory as the explorer reads it (``bmoe lm train``: ``lm.json``, ``history.json``).

Owns what differs from a classifier's run directory: the settings are ``lm.json`` (the model's and the protocol's,
:class:`~bmoe.run.lm.config.LMRunConfig`) instead of ``config.json``, the curves ``history.json`` (training loss,
learning rate and costs per round, validation loss per point) instead of ``metrics.json``. The chain and the
store are read as a classifier's are (:class:`~bmoe.explorer.source.RunSource`): the same audit, plus one anchor,
``lm.json``'s settings hash, which must be the genesis's (settings of another run fail the audit, as
``config.json``'s do for a classifier). Also which of the two a directory holds (:func:`run_source`), and a
language model's deployment (:class:`LMClusterSource`: its chains and storage nodes as a classifier's cluster, its
settings and curves in the cluster's directory).
Must not know HTML or the index.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bmoe.explorer.source import ClusterSource, ExplorerError, RunSource, chain_files
from bmoe.net.cluster_file import load_cluster
from bmoe.run.config import ConfigError, RunConfig
from bmoe.run.lm.artifacts import read_history
from bmoe.run.lm.config import LM_CONFIG_FILE as LM_FILE
from bmoe.run.lm.config import LMRunConfig
from bmoe.run.lm.session import HISTORY_FILE
from bmoe.run.lm.settings_file import read_lm_settings
from bmoe.run.run_dir import CHAIN_FILE, CONFIG_FILE


class LMRunSource(RunSource):
    """A run directory written by ``bmoe lm train`` (``LMSession`` with a run directory)."""

    def __init__(self, run_dir: Path) -> None:
        super().__init__(run_dir)
        try:
            self.settings()
        except ConfigError as err:
            raise ExplorerError(str(err)) from None

    def watched(self) -> list[Path]:
        return [*chain_files(self.run_dir / CHAIN_FILE), self.run_dir / LM_FILE, self.run_dir / HISTORY_FILE]

    def settings(self) -> LMRunConfig:
        return read_lm_settings(self.run_dir / LM_FILE)

    def config(self) -> RunConfig:
        """The protocol's settings (``lm.json``'s ``run`` table): what a classifier's page reads of a run."""
        return self.settings().run

    def metrics(self) -> dict[str, Any] | None:
        return None  # no accuracy: a language model's curves are its history (history())

    def history(self) -> dict[str, list[dict[str, Any]]]:
        return read_history(self.run_dir / HISTORY_FILE)


class LMClusterSource(ClusterSource):
    """A language model's deployment (``bmoe lm cluster``): its settings (``DIR/lm.json``) and the curves its
    publisher records (``DIR/history.json``, ``bmoe lm train --cluster``)."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        try:
            self.settings()
        except ConfigError as err:
            raise ExplorerError(str(err)) from None

    def watched(self) -> list[Path]:
        return [*super().watched(), self.root / LM_FILE, self.root / HISTORY_FILE]

    def settings(self) -> LMRunConfig:
        return read_lm_settings(self.root / LM_FILE)

    def config(self) -> RunConfig:
        return self.settings().run

    def history(self) -> dict[str, list[dict[str, Any]]]:
        return read_history(self.root / HISTORY_FILE)


def cluster_source(root: Path) -> ClusterSource:
    """The cluster's source: a language model's deployment (``lm`` in ``cluster.json``) or a classifier's."""
    if not root.is_dir():
        raise ExplorerError(f"cluster directory {root} does not exist or is not a directory")
    return LMClusterSource(root) if load_cluster(root).lm is not None else ClusterSource(root)


def run_source(run_dir: Path) -> RunSource:
    """The run directory's source: a language model's (``lm.json``) or a classifier's (``config.json``)."""
    if (run_dir / LM_FILE).is_file():
        if (run_dir / CONFIG_FILE).exists():
            raise ExplorerError(f"{run_dir} holds both {CONFIG_FILE} and {LM_FILE}: not one run's directory")
        return LMRunSource(run_dir)
    return RunSource(run_dir)
