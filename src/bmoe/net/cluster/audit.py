"""The audit of a local cluster (``bmoe audit --cluster DIR``): every validator's chain, against its storage nodes.

Owns reading the cluster's anchors (its ``config.json`` and enrolment file), its objects (the storage nodes, read
with the publisher's key, or the cluster's IPFS node) and the rule that validators' chains agree (a replica may
lag, never fork). Each chain is audited as a run directory's is (:mod:`bmoe.run.audit`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bmoe.ledger.audit import Anchors, AuditFailure, AuditReport, BlockAnchor
from bmoe.ledger.keys import ENROLLED_KEYS
from bmoe.ledger.snapshot import chain_snapshot
from bmoe.net.cluster_file import load_cluster
from bmoe.run.audit import AuditSetupError, audit_chain, chain_path, config_anchor, genesis_keys, lm_anchor
from bmoe.run.lm.settings_file import read_lm_settings
from bmoe.run.run_dir import read_config_file
from bmoe.storage import BlobStore


@contextmanager
def cluster_objects(root: Path) -> Iterator[tuple[BlobStore, list[Path], Anchors, str | None]]:
    """The storage nodes (read with the publisher's key) or the cluster's IPFS node, the validators' chain
    files, the cluster's anchors, and the Ethereum node its config names (None: bmoe's own ledger)."""
    from bmoe.ledger.keys import load_identity
    from bmoe.net.enrolment import load_enrolment
    from bmoe.net.node_setup import trusted_stores
    from bmoe.net.store.client import HttpBlobStore

    cluster = load_cluster(root)
    chains = [chain_path(cluster.run_dir(record)) for record in cluster.by_role("validator")]
    if not chains:
        raise AuditSetupError(f"{root}: the cluster has no validator, so no chain (a traditional deployment?)")
    identity = load_identity(cluster.path(cluster.publisher_key))
    enrolled = load_enrolment(cluster.path(cluster.enrolment))
    with chain_snapshot(chains[0]) as chain:
        seeded = genesis_keys(chain) != ENROLLED_KEYS
    genesis = config_anchor(cluster.path(cluster.config), seeded, enrolled, str(cluster.path(cluster.enrolment)))
    fields: dict[str, Any] = dict(genesis[0]) if genesis else {}
    names = [name for name in enrolled if name.startswith(("validator-", "edge-"))]
    if seeded and fields and any(enrolled.get(n) not in (*fields["validators"], *fields["edges"]) for n in names):
        raise AuditFailure(f"{cluster.path(cluster.enrolment)} enrols keys that {cluster.config} does not derive")
    rpc_url = read_config_file(cluster.path(cluster.config)).rpc_url if genesis else None
    source = genesis[1] if genesis else ""
    if cluster.lm is not None:  # a language model's deployment: its settings' hash, and every round replayed
        lm = lm_anchor(root, seeded)
        if lm is None:
            raise AuditSetupError(f"{cluster.path(cluster.lm)} is missing: the language model's settings")
        fields["config_hash"], source = lm[0]["config_hash"], f"{cluster.path(cluster.lm)} and {source}"
    anchors = Anchors(genesis=fields, genesis_source=source)
    if cluster.ipfs_api:
        from bmoe.storage.ipfs import IpfsStore

        with IpfsStore(cluster.ipfs_api) as node:
            node.ping()
            yield node, chains, anchors, rpc_url
        return
    addresses = trusted_stores(cluster.stores, identity, enrolled)
    with HttpBlobStore(cluster.stores, identity, node_addresses=addresses) as store:
        yield store, chains, anchors, rpc_url


def audit_cluster(root: Path, heads: tuple[BlockAnchor, ...]) -> list[tuple[Path, AuditReport]]:
    """Audit every validator's chain of the cluster in ``root`` against its storage nodes; they must agree."""
    reports: list[tuple[Path, AuditReport]] = []
    with cluster_objects(root) as (store, chains, anchors, rpc_url):  # a language model's settings checked there
        cluster = load_cluster(root)
        lm = read_lm_settings(cluster.path(cluster.lm)) if cluster.lm is not None else None  # its rounds replayed
        for path in chains:
            with chain_snapshot(path) as chain:
                report = audit_chain(chain, store, Anchors(heads, anchors.genesis, anchors.genesis_source), rpc_url,
                                     lm)
            reports.append((path, report))
    _check_agreement(reports)
    return reports


def _check_agreement(reports: list[tuple[Path, AuditReport]]) -> None:
    """Every validator's chain is a prefix of the longest one (replicas may lag, never fork)."""
    longest_path, longest = max(reports, key=lambda item: item[1].height)
    for path, report in reports:
        if report.head_hash != longest.block_hashes[report.height]:
            raise AuditFailure(f"{path} forks from {longest_path} at or below height {report.height}")
