"""``bmoe audit``: check a run directory's chain, or a deployment's chains against its storage nodes.

Owns what the audit is anchored to, beyond the chain itself (``ledger/audit.py`` does the replay):

- the genesis's rules (engine, validators, difficulty), always: nothing is read from ``config.json``
  to decide whether a block's seal is good;
- the run's ``config.json``, when present: its settings hash must be the genesis's (a chain of another
  run fails), and so must the participants' keys: under keys derived from the seed (a genesis without
  ``"keys": "enrolled"``), the ones the config's seed derives; under enrolled keys, the public keys of
  the enrolment file (``--enrolled FILE``, a cluster's own), and the report says which keys a run has;
- the head the run recorded in ``metrics.json``, when present, and the last sealed block its chain store
  anchored in ``head.json`` after each block (present from the first block on, so a killed run is
  anchored too): each must be in the chain at its height (a truncated chain, or a corrupted WAL that
  lost blocks, fails);
- ``--expect-head HASH`` (repeatable): a block hash the user recorded must be in the chain (a whole
  substituted run directory fails);
- with ``--cluster DIR``: the cluster's ``config.json`` and enrolment file, every validator's chain
  (they must agree), and the objects on the storage nodes (or, under ``--store ipfs``, on the cluster's
  IPFS node); a cluster sealing on Ethereum is checked against its contract, as a run directory is.

It never writes: the chain is read from a private copy, the store is opened without creating it. A run whose
objects live on an IPFS node (``--store ipfs``), or any run with ``--ipfs-api URL``, is checked against the
node's copies, each verified against its CID.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from bmoe.console import console
from bmoe.credentials import rpc_url_from_environment
from bmoe.fileio import read_regular_text
from bmoe.ledger.audit import Anchors, AuditFailure, AuditReport, BlockAnchor, audit
from bmoe.ledger.blocks import block_from_bytes
from bmoe.ledger.chainstore import ChainStore
from bmoe.ledger.encoding import is_hex64
from bmoe.ledger.errors import ChainStoreError, LedgerError
from bmoe.ledger.head_anchor import read_head_anchor
from bmoe.ledger.keys import ENROLLED_KEYS
from bmoe.ledger.snapshot import chain_snapshot
from bmoe.protocol.grouped_check import block_check
from bmoe.run.config import ConfigError
from bmoe.run.run_dir import HEAD_FILE, read_config_file
from bmoe.run.session import CHAIN_FILE, CONFIG_FILE, STORE_DIR
from bmoe.run.setup import derive_identities, enrolled_identities
from bmoe.storage import BlobStore, DirectoryStore
from bmoe.verify.bound_window import bound_in_force

METRICS_FILE = "metrics.json"


class AuditSetupError(ConfigError):
    """The audit's inputs are unusable (not a run directory, an unreadable anchor file, a bad flag)."""


def _read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(read_regular_text(path))
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise AuditSetupError(f"{path}: cannot read {what}: {err}") from None


def config_anchor(path: Path, seeded: bool = True, enrolled: Mapping[str, str] | None = None,
                  enrolment_source: str = "") -> tuple[dict[str, Any], str] | None:
    """Genesis fields a ``config.json`` implies (settings hash, participants' addresses), or None if absent.

    ``seeded``: the genesis says its keys derive from the seed, so the config's seed gives the addresses;
    else they are ``enrolled``'s (when given; without it only the settings hash is anchored)."""
    if not path.exists():
        return None
    config = read_config_file(path)  # a regular file holding a JSON object of valid settings, or ConfigError
    fields: dict[str, Any] = {"config_hash": config.hash(), "keys": None if seeded else ENROLLED_KEYS}
    source = str(path)
    if seeded or enrolled is not None:
        try:
            ids = derive_identities(config) if seeded else enrolled_identities(config, enrolled or {})
        except ConfigError as exc:
            raise AuditFailure(f"{enrolment_source}: {exc}") from None
        fields.update({"publisher": ids.publisher.address, "validators": [v.address for v in ids.validators],
                       "edges": [e.address for e in ids.edges]})
        source = str(path) if seeded else f"{path} and {enrolment_source}"
    return fields, source


def genesis_keys(chain: ChainStore) -> str:
    """What the genesis says of its keys: ``"enrolled"`` (held by their owners) or ``"seeded"`` (derived from
    the run's seed, every genesis without the field); ``"seeded"`` for a block 0 that does not read (the
    audit names what is wrong with it)."""
    genesis = _genesis_payload(chain)
    return ENROLLED_KEYS if genesis is not None and genesis.get("keys") == ENROLLED_KEYS else "seeded"


def keys_line(genesis: Mapping[str, Any] | None) -> str:
    """The audit's sentence on whose keys sign the run."""
    if genesis is not None and genesis.get("keys") == ENROLLED_KEYS:
        return "keys: enrolled public keys, each held by its owner (the genesis records keys: enrolled)"
    return ("keys: derived from the run's seed (a reproducible simulation: anyone who knows the seed can sign "
            "as any participant)")


def metrics_anchor(path: Path) -> BlockAnchor | None:
    """The head a finished run recorded in ``metrics.json``, or None if the file is absent."""
    if not path.exists():
        return None
    body = _read_json(path, "the run's metrics")
    summary = body.get("summary") if isinstance(body, dict) else None
    head = summary.get("head_hash") if isinstance(summary, dict) else None
    height = summary.get("height") if isinstance(summary, dict) else None
    if not is_hex64(head) or not isinstance(height, int) or isinstance(height, bool):
        raise AuditFailure(f"{path}: summary.head_hash / summary.height are not a block hash and a height")
    return BlockAnchor(str(head), height, str(path))


def head_anchor(path: Path) -> BlockAnchor | None:
    """The last sealed block the chain store anchored in ``head.json``, or None if the file is absent."""
    try:
        anchor = read_head_anchor(path)
    except ChainStoreError as err:
        raise AuditFailure(str(err)) from None
    return None if anchor is None else BlockAnchor(anchor.head_hash, anchor.height, str(path))


def expected_heads(values: tuple[str, ...]) -> tuple[BlockAnchor, ...]:
    anchors = []
    for value in values:
        if not is_hex64(value):
            raise AuditSetupError(f"--expect-head must be a 64-character lower-case hex block hash, got {value!r}")
        anchors.append(BlockAnchor(value, None, "--expect-head"))
    return tuple(anchors)


def _chain_path(directory: Path) -> Path:
    if not directory.is_dir():
        raise AuditSetupError(f"run directory {directory} does not exist or is not a directory")
    path = directory / CHAIN_FILE
    if not path.exists():
        raise AuditSetupError(f"{directory} has no {CHAIN_FILE}: not a B-MoE run directory")
    return path


@contextmanager
def run_objects(run_dir: Path, ipfs_api: str | None) -> Iterator[BlobStore]:
    """The run's objects: on the IPFS node given, else on the one the run recorded, else in its ``store/``."""
    from bmoe.cli.store_options import recorded_settings
    from bmoe.storage.ipfs import DEFAULT_API, IpfsStore

    recorded = recorded_settings(run_dir) if ipfs_api is None else None
    if ipfs_api is not None or (recorded is not None and recorded.store == "ipfs"):
        with IpfsStore(ipfs_api or (recorded and recorded.ipfs_api) or DEFAULT_API) as node:
            node.ping()  # only reads: pin/ls and cat, every object verified against its CID
            yield node
        return
    root = run_dir / STORE_DIR
    if root.exists() and not root.is_dir():
        raise AuditSetupError(f"{root} is not a directory: the run's object store is missing")
    yield DirectoryStore(root, create=False)


def audit_run_dir(run_dir: Path, heads: tuple[BlockAnchor, ...], ipfs_api: str | None = None,
                  rpc_url: str | None = None, enrolled: Path | None = None) -> AuditReport:
    """Audit one run directory against its own anchors and the user's (a chain sealed on Ethereum: the
    contract's chain, with the run directory's as a copy that must agree); ``enrolled``: the enrolment file
    whose public keys a genesis of enrolled keys must hold."""
    chain_path = _chain_path(run_dir)
    members = _enrolment(enrolled) if enrolled is not None else None
    with chain_snapshot(chain_path) as chain, run_objects(run_dir, ipfs_api) as store:
        seeded = genesis_keys(chain) != ENROLLED_KEYS
        genesis = config_anchor(run_dir / CONFIG_FILE, seeded, members, str(enrolled))
        recorded = metrics_anchor(run_dir / METRICS_FILE)
        sealed = head_anchor(run_dir / HEAD_FILE)
        anchors = Anchors(blocks=heads + tuple(anchor for anchor in (recorded, sealed) if anchor is not None),
                          genesis=genesis[0] if genesis else {}, genesis_source=genesis[1] if genesis else "")
        unanchored = [f"{name} absent" for name, used in ((CONFIG_FILE, genesis), (METRICS_FILE, recorded),
                                                          (HEAD_FILE, sealed)) if used is None]
        if not seeded and members is None:
            unanchored.append("the enrolled public keys (give --enrolled FILE)")
        if rpc_url is not None and ethereum_section(chain) is None:
            raise AuditSetupError(f"--rpc-url: {run_dir}'s chain is not sealed on Ethereum")
        rpc_url = rpc_url or rpc_url_from_environment() or _recorded_rpc_url(run_dir)
        report = audit_chain(chain, store, anchors, rpc_url)
    report.unanchored = unanchored + report.unanchored
    return report


def audit_chain(chain: ChainStore, store: BlobStore, anchors: Anchors, rpc_url: str | None) -> AuditReport:
    """Audit one chain file: a chain sealed on Ethereum, with a node to ask, as the chain its contract sealed
    (the file a copy that must agree); else the file itself, saying so when its contract was not consulted."""
    section = ethereum_section(chain)
    if section is not None and rpc_url:
        from bmoe.ethereum.audit_run import audit_on_contract

        return audit_on_contract(rpc_url, section, chain, store, anchors, block_check(store))
    report = audit(chain, store, anchors, block_check(store))
    if section is not None:
        report.unanchored.append("the Ethereum contract that sealed it (give --rpc-url URL)")
    return report


def _genesis_payload(chain: ChainStore) -> Mapping[str, Any] | None:
    """Block 0's genesis payload, or None when it does not read as one (not trusted yet: the audit checks it)."""
    first = next(iter(chain.iter_raw()), None)
    if first is None or not isinstance(first[2], bytes | bytearray | memoryview):
        return None
    try:
        genesis = block_from_bytes(bytes(first[2])).transactions
    except LedgerError:
        return None
    return genesis[0].payload if genesis and genesis[0].kind == "genesis" else None


def ethereum_section(chain: ChainStore) -> dict[str, Any] | None:
    """The genesis's consensus section when block 0 reads as a genesis sealing on Ethereum, else None (the
    chain is not trusted yet: a block 0 that does not read is the audit's to name)."""
    genesis = _genesis_payload(chain)
    section = genesis.get("consensus") if genesis is not None else None
    return dict(section) if isinstance(section, dict) and section.get("engine") == "ethereum" else None


def _enrolment(path: Path) -> dict[str, str]:
    from bmoe.net.enrolment import load_enrolment
    from bmoe.net.errors import EnrolmentError

    try:
        return load_enrolment(path)
    except EnrolmentError as exc:
        raise AuditSetupError(str(exc)) from None


def _recorded_rpc_url(run_dir: Path) -> str | None:
    from bmoe.cli.store_options import recorded_settings

    recorded = recorded_settings(run_dir)
    return None if recorded is None else recorded.rpc_url


@contextmanager
def cluster_objects(root: Path) -> Iterator[tuple[BlobStore, list[Path], Anchors, str | None]]:
    """The storage nodes (read with the publisher's key) or the cluster's IPFS node, the validators' chain
    files, the cluster's anchors, and the Ethereum node its config names (None: bmoe's own ledger)."""
    from bmoe.ledger.keys import load_identity
    from bmoe.net.cluster_file import load_cluster
    from bmoe.net.enrolment import load_enrolment
    from bmoe.net.node_setup import trusted_stores
    from bmoe.net.store.client import HttpBlobStore

    cluster = load_cluster(root)
    chains = [_chain_path(cluster.run_dir(record)) for record in cluster.by_role("validator")]
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
    anchors = Anchors(genesis=fields, genesis_source=genesis[1] if genesis else "")
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
    with cluster_objects(root) as (store, chains, anchors, rpc_url):
        for path in chains:
            with chain_snapshot(path) as chain:
                report = audit_chain(chain, store, Anchors(heads, anchors.genesis, anchors.genesis_source), rpc_url)
            reports.append((path, report))
    _check_agreement(reports)
    return reports


def _check_agreement(reports: list[tuple[Path, AuditReport]]) -> None:
    """Every validator's chain is a prefix of the longest one (replicas may lag, never fork)."""
    longest_path, longest = max(reports, key=lambda item: item[1].height)
    for path, report in reports:
        if report.head_hash != longest.block_hashes[report.height]:
            raise AuditFailure(f"{path} forks from {longest_path} at or below height {report.height}")


def evidence_summary(report: AuditReport) -> str:
    """What the audit checked of the edges' answers, in words (``bmoe audit``'s report, the explorer's run page)."""
    if report.state.comparison.records_groups:
        return (f"{report.evidence_required} committed answers, from which every recorded group, accepted value "
                f"and distance was re-derived ({report.state.comparison.name})")
    return (f"{report.evidence_required} evidence objects behind misbehaviour records, "
            f"{report.evidence_checked} other commitments ({report.evidence_missing} absent)")


def _print(report: AuditReport, where: Path) -> None:
    console.print(f"OK: {where}: {report.blocks} blocks (height {report.height}), head {report.head_hash}",
                  highlight=False, soft_wrap=True)
    evidence = evidence_summary(report)
    console.print(f"checked {report.transactions} transactions, {report.signatures} signatures, Merkle roots, "
                  f"seals ({report.seal_rules}), state roots by replay, "
                  f"{report.objects_checked} required objects, {evidence}", highlight=False, soft_wrap=True)
    bound = bound_in_force(report.state.genesis or {})
    if bound is not None:
        console.print(f"bound in force: {bound}", highlight=False, soft_wrap=True)
    console.print(keys_line(report.state.genesis), highlight=False, soft_wrap=True)
    console.print("anchored to: " + "; ".join(report.anchored_to), highlight=False, soft_wrap=True)
    if report.unanchored:
        console.print("not anchored by: " + "; ".join(report.unanchored) + " (give --expect-head HASH to anchor it)",
                      highlight=False, soft_wrap=True)


@click.command("audit")
@click.argument("run_dir", type=click.Path(path_type=Path), required=False)
@click.option("--cluster", type=click.Path(path_type=Path), default=None,
              help="audit the local deployment in this directory: every validator's chain, objects on its stores")
@click.option("--expect-head", "expect_head", multiple=True, metavar="HASH",
              help="a block hash the chain must contain, e.g. the head you recorded (repeatable)")
@click.option("--ipfs-api", default=None, metavar="URL",
              help="read RUN_DIR's objects from this IPFS node's kubo HTTP RPC [the run's store]")
@click.option("--rpc-url", default=None, metavar="URL",
              help="a chain sealed on Ethereum: read it from its contract on this node "
                   "[$BMOE_RPC_URL, else the run's]")
@click.option("--enrolled", type=click.Path(path_type=Path), default=None, metavar="FILE",
              help="a run of enrolled keys (a deployment's validator): the enrolment whose public keys its "
                   "genesis must hold [a cluster's own]")
def audit_command(run_dir: Path | None, cluster: Path | None, expect_head: tuple[str, ...],
                  ipfs_api: str | None, rpc_url: str | None, enrolled: Path | None) -> None:
    """Replay the chain from its genesis and check every hash, signature, seal, state root and object."""
    if (run_dir is None) == (cluster is None):
        raise AuditSetupError("give a RUN_DIR or --cluster DIR (one of them)")
    if cluster is not None and (ipfs_api is not None or rpc_url is not None or enrolled is not None):
        raise AuditSetupError("--ipfs-api, --rpc-url and --enrolled are a RUN_DIR's; a cluster's come from its "
                              "cluster.json")
    heads = expected_heads(expect_head)
    if cluster is not None:
        for path, report in audit_cluster(cluster, heads):
            _print(report, path)
        return
    assert run_dir is not None
    _print(audit_run_dir(run_dir, heads, ipfs_api, rpc_url, enrolled), run_dir)
