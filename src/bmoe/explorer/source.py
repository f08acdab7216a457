"""Where an explored run's chain, objects, config and metrics are: a run directory, or a local cluster.

Owns the choice between the two, and reading each through the project's own readers: the audit of
``run/audit`` and ``net/cluster/audit`` (the same checks as ``bmoe audit RUN_DIR`` / ``--cluster DIR``), its
object stores (the run's directory or IPFS node; the cluster's storage nodes, read with the publisher's key),
the run's ``config.json`` and ``metrics.json``, the cluster's ``cluster.json``. Also what to watch for
change: the chain files and their write-ahead logs. A language model's run directory (``lm.json``) is
``lm_source``'s, a :class:`RunSource` with its own settings and curves. Must not know HTML or the index.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any, Protocol

from bmoe.fileio import read_regular_text
from bmoe.ledger.audit import AuditReport
from bmoe.ledger.snapshot import WAL_SUFFIX
from bmoe.net.cluster.audit import audit_cluster, cluster_objects
from bmoe.net.cluster_file import CLUSTER_FILE, ClusterDescription, load_cluster
from bmoe.run.audit import METRICS_FILE, audit_run_dir, run_objects
from bmoe.run.config import ConfigError, RunConfig
from bmoe.run.run_dir import CHAIN_FILE, CONFIG_FILE, read_config_file
from bmoe.storage import BlobStore


class ExplorerError(ConfigError):
    """The explorer cannot start on what it was given (one line, exit 2)."""


class Source(Protocol):
    """What the explorer reads; a run directory and a cluster differ only here."""

    label: str

    def watched(self) -> list[Path]: ...

    def audit(self) -> tuple[AuditReport, Path]: ...

    def objects(self) -> AbstractContextManager[BlobStore]: ...

    def config(self) -> RunConfig: ...

    def metrics(self) -> dict[str, Any] | None: ...

    @property
    def cluster(self) -> ClusterDescription | None: ...


def _stamp(paths: list[Path]) -> tuple[tuple[int, int], ...]:
    stamps = []
    for path in paths:
        try:
            stat = path.stat()
            stamps.append((stat.st_mtime_ns, stat.st_size))
        except OSError:
            stamps.append((0, -1))
    return tuple(stamps)


def fingerprint(source: Source) -> tuple[tuple[int, int], ...]:
    """Changes whenever a watched file does (a block sealed, a run resumed)."""
    return _stamp(source.watched())


def chain_files(chain: Path) -> list[Path]:
    """A chain file and its write-ahead log."""
    return [chain, chain.with_name(chain.name + WAL_SUFFIX)]


class RunSource:
    """A run directory written by ``bmoe train`` (and ``bmoe infer``)."""

    def __init__(self, run_dir: Path) -> None:
        if not run_dir.is_dir():
            raise ExplorerError(f"run directory {run_dir} does not exist or is not a directory")
        if not (run_dir / CHAIN_FILE).is_file():
            hint = (f" (it is a cluster directory: bmoe explorer --cluster {run_dir})"
                    if (run_dir / CLUSTER_FILE).is_file() else " (a traditional run keeps no ledger)")
            raise ExplorerError(f"{run_dir} has no {CHAIN_FILE}: not a B-MoE run directory{hint}")
        self.run_dir = run_dir
        self.label = f"run {run_dir.resolve().name}"

    def watched(self) -> list[Path]:
        return [*chain_files(self.run_dir / CHAIN_FILE), self.run_dir / METRICS_FILE, self.run_dir / CONFIG_FILE]

    def audit(self) -> tuple[AuditReport, Path]:
        return audit_run_dir(self.run_dir, ()), self.run_dir / CHAIN_FILE

    def objects(self) -> AbstractContextManager[BlobStore]:
        return run_objects(self.run_dir, None)

    def config(self) -> RunConfig:
        return read_config_file(self.run_dir / CONFIG_FILE)

    def metrics(self) -> dict[str, Any] | None:
        """The run's own record of its rounds (accuracies), or None: not on the ledger, so shown as such."""
        try:
            body = json.loads(read_regular_text(self.run_dir / METRICS_FILE))
        except (OSError, UnicodeDecodeError, ValueError):
            return None
        return body if isinstance(body, dict) else None

    @property
    def cluster(self) -> ClusterDescription | None:
        return None


class ClusterSource:
    """A local deployment started by ``bmoe cluster up``: its validators' chains, its storage nodes."""

    def __init__(self, root: Path) -> None:
        if not root.is_dir():
            raise ExplorerError(f"cluster directory {root} does not exist or is not a directory")
        self.root = root
        description = load_cluster(root)  # SetupError (one line) when cluster.json is missing or malformed
        if not description.by_role("validator"):
            raise ExplorerError(f"{root}: the cluster has no validator, so no ledger (a traditional deployment?)")
        self.label = f"cluster {root.resolve().name}"

    @property
    def cluster(self) -> ClusterDescription:
        return load_cluster(self.root)  # re-read: a restart records new pids

    def _chains(self) -> list[Path]:
        cluster = self.cluster
        return [cluster.run_dir(record) / CHAIN_FILE for record in cluster.by_role("validator")]

    def watched(self) -> list[Path]:
        return [path for chain in self._chains() for path in chain_files(chain)]

    def audit(self) -> tuple[AuditReport, Path]:
        """Every validator's chain audited against the storage nodes (they must agree); the longest one."""
        path, report = max(audit_cluster(self.root, ()), key=lambda item: item[1].height)
        return report, path

    @contextmanager
    def objects(self) -> Iterator[BlobStore]:
        with cluster_objects(self.root) as (store, _chains, _anchors, _rpc_url):
            yield store

    def config(self) -> RunConfig:
        cluster = self.cluster
        return read_config_file(cluster.path(cluster.config))

    def metrics(self) -> dict[str, Any] | None:
        return None  # a cluster's publisher keeps no metrics file: the ledger's loss is the curve
