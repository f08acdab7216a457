"""``bmoe edge``: run one edge as a long-running process (``python -m bmoe.net.edge``).

Owns the edge's command line: settings from ``--cluster-dir`` and/or flags (flags win), the key
check against the genesis, the behaviour, then :class:`~bmoe.net.edge.node.EdgeLoop` until killed.

    python -m bmoe.net.edge --cluster-dir D --index 3
    python -m bmoe.net.edge --validator http://127.0.0.1:7100 --stores http://127.0.0.1:7001 \\
        --key edge-3.key --index 3 --config config.json [--attack gaussian --attack-param probability=1]

``--ipfs-api URL`` instead of ``--stores``: the objects live on that IPFS node (``--store ipfs``), every
read verified against its CID.

Numeric profile: ``--profile NAME``, else the config's ``fleet`` entry for this edge; a profile
that sets environment variables (``mkl-compat``) is refused unless the process was started with them.
The edge declares its profile in every poll, so a validator under exact comparison refuses tasks
while the enrolled edges' profiles compute differently (:mod:`bmoe.net.fleet_check`).

Behaviour: ``--attack NAME`` (``honest`` or any attack registered in ``bmoe.edge.behaviour``) with
``--attack-param k=v``; else the cluster description's entry for this edge; else what the config
says for edge ``index`` (the last ``malicious_ratio`` x M edges attack). With ``--enrolled`` (or a
cluster directory) the key must be enrolled as ``edge-I``, the validators are the enrolled ones and
the storage nodes' replies must be signed by enrolled keys; without it the key must be the one the
config's seed derives, and the storage nodes' bytes are checked against their CIDs only.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
import torch

from bmoe.edge.profiles import FleetError, NumericProfile, get_profile
from bmoe.edge.runtime import ExpertRuntime
from bmoe.edge.worker import EdgeWorker
from bmoe.ledger.keys import Identity, load_identity
from bmoe.ledger.node import Signer
from bmoe.moe.experts import ExpertSpec
from bmoe.net.cli_support import run_command
from bmoe.net.cluster_file import load_cluster
from bmoe.net.edge.node import EdgeLoop, EdgeNode
from bmoe.net.enrolment import load_enrolment
from bmoe.net.fleet_check import numerics_of
from bmoe.net.node_setup import (
    SetupError,
    dataset_shape,
    ipfs_store,
    load_run_config,
    make_edge_behaviour,
    parse_params,
    parse_shape,
    parse_urls,
    run_identities,
    trusted_stores,
)
from bmoe.net.store.client import HttpBlobStore
from bmoe.net.work_wire import declaration_query
from bmoe.run.config import RunConfig
from bmoe.run.setup import behaviours
from bmoe.storage import BlobStore
from bmoe.storage.write_behind import WriteBehindStore


@dataclass
class EdgeArgs:
    validator: str | None = None
    stores: str | None = None
    ipfs_api: str | None = None
    key: Path | None = None
    config: Path | None = None
    enrolled: Path | None = None
    input_shape: str | None = None
    classes: int | None = None
    behaviour: dict[str, object] | None = None
    store_addresses: dict[str, str] = field(default_factory=dict)
    lm: Path | None = None  # a language model's settings (lm.json): the edge computes SwiGLU experts


def from_cluster(root: Path, index: int) -> EdgeArgs:
    cluster = load_cluster(root)
    record = cluster.edge(index)
    addresses = {r.url: r.address for r in cluster.by_role("store") if r.url}
    return EdgeArgs(cluster.validator, None if cluster.ipfs_api else ",".join(cluster.stores), cluster.ipfs_api,
                    cluster.path(record.key) if record.key else None,  # None: an edge its operator runs (--key)
                    cluster.path(cluster.config), cluster.path(cluster.enrolment),
                    ",".join(map(str, cluster.input_shape)), cluster.num_classes, record.behaviour, addresses,
                    cluster.path(cluster.lm) if cluster.lm else None)


def _log(name: str) -> Callable[[str], None]:
    def log(message: str) -> None:
        click.echo(f"{time.strftime('%H:%M:%S')} {name}: {message}")
        sys.stdout.flush()

    return log


@click.command("edge", help="Run one edge: poll the validator for work, compute experts, post signed commitments.")
@click.option("--cluster-dir", type=click.Path(path_type=Path), default=None,
              help="read the settings from DIR/cluster.json (explicit flags override)")
@click.option("--index", type=click.IntRange(min=0), required=True, help="this edge's index I (its key is edge-I)")
@click.option("--validator", default=None, help="the validator's URL")
@click.option("--stores", default=None, help="comma-separated storage node URLs")
@click.option("--ipfs-api", default=None, metavar="URL",
              help="instead of --stores: the IPFS node (kubo HTTP RPC) holding the objects")
@click.option("--key", "key_file", type=click.Path(path_type=Path), default=None, help="this edge's identity file")
@click.option("--config", "config_file", type=click.Path(path_type=Path), default=None, help="RunConfig JSON")
@click.option("--enrolled", type=click.Path(path_type=Path), default=None,
              help="enrolment file: check the storage nodes' replies against it")
@click.option("--attack", default=None, help="this edge's behaviour: honest or a registered attack")
@click.option("--attack-param", "attack_params", multiple=True, help="NAME=NUMBER, repeatable")
@click.option("--input-shape", default=None, help="e.g. 1,8,8 [default: read from the config's dataset]")
@click.option("--classes", type=click.IntRange(min=2), default=None, help="number of classes")
@click.option("--profile", "profile_name", default=None,
              help="numeric profile (edge/profiles.py) [the config's fleet entry for this edge]")
@click.option("--lm", "lm_file", type=click.Path(path_type=Path), default=None,
              help="a language model's run: its settings (lm.json); the edge computes its SwiGLU experts")
def edge_command(cluster_dir: Path | None, index: int, validator: str | None, stores: str | None,
                 ipfs_api: str | None, key_file: Path | None, config_file: Path | None, enrolled: Path | None,
                 attack: str | None,
                 attack_params: tuple[str, ...], input_shape: str | None, classes: int | None,
                 profile_name: str | None, lm_file: Path | None) -> None:
    args = from_cluster(cluster_dir, index) if cluster_dir is not None else EdgeArgs()
    if stores is not None and ipfs_api is not None:
        raise click.UsageError("give --stores or --ipfs-api, not both")
    if stores is not None or ipfs_api is not None:
        args.stores, args.ipfs_api = stores, ipfs_api
    for name, value in (("validator", validator), ("key", key_file), ("config", config_file),
                        ("enrolled", enrolled), ("input_shape", input_shape), ("classes", classes),
                        ("lm", lm_file)):
        if value is not None:
            setattr(args, name, value)
    missing = [flag for flag, value in (("--validator", args.validator),
                                        ("--stores", args.stores or args.ipfs_api),
                                        ("--key", args.key), ("--config", args.config)) if value is None]
    if missing:
        raise click.UsageError(f"missing {', '.join(missing)} (or give --cluster-dir)")
    assert args.validator and args.key and args.config
    config = load_run_config(args.config)
    edges = config.edges_in_play
    if index >= edges:
        raise SetupError(f"--index {index}: the config has {edges} edges (0..{edges - 1})")
    identity = load_identity(args.key)
    members = load_enrolment(args.enrolled) if args.enrolled is not None else None
    ids = run_identities(config, members, identity, [f"edge-{index}"])
    if attack is not None:
        behaviour = make_edge_behaviour(attack, parse_params(attack_params))
    elif args.behaviour is not None:
        described = dict(args.behaviour)
        name = str(described.pop("name"))
        behaviour = make_edge_behaviour(name, {k: float(v) for k, v in described.items()})  # type: ignore[arg-type]
    else:
        behaviour = behaviours(config)[index]
    try:
        profile = get_profile(profile_name if profile_name is not None else config.edge_profiles[index])
        profile.check_process()  # MKL_CBWR and the like act only if set before torch loaded
    except FleetError as exc:
        raise SetupError(str(exc)) from None
    store, where = _store(args, identity, members)
    validator_urls = parse_urls(args.validator, "--validator")
    validator_url = validator_urls[0]
    torch.set_num_threads(config.threads)  # bit-exact agreement needs the same thread count everywhere
    runtime = _runtime(args, config, store, profile)
    worker = EdgeWorker(index, Signer(identity), behaviour, runtime, store, config.seed, config.collude)
    log = _log(f"edge-{index}")
    loop = EdgeLoop(EdgeNode(worker, runtime, store, config.num_experts), validator_url, ids.validator.address,
                    log=log, validator_urls=validator_urls, trusted=[v.address for v in ids.validators],
                    declared=declaration_query(profile.name, numerics_of(profile, config.threads)))
    click.echo(f"bmoe edge: edge-{index} {identity.address} polling {validator_url}, behaviour "
               f"{behaviour.describe()}, profile {profile.name}, {where}")
    sys.stdout.flush()
    try:
        loop.run()
    finally:
        loop.close()
        store.close()


def _runtime(args: EdgeArgs, config: RunConfig, store: BlobStore, profile: NumericProfile) -> ExpertRuntime:
    """The runtime of the run's experts: a language model's SwiGLU experts (``--lm``), else the config's preset
    over the input shape and classes (given, or read from the config's dataset)."""
    if args.lm is not None:
        from bmoe.edge.lm_runtime import LMExpertRuntime, swiglu_spec
        from bmoe.run.lm.settings_file import read_lm_settings

        lm: Any = read_lm_settings(args.lm).lm
        return LMExpertRuntime(store, swiglu_spec(lm.hidden_size, lm.intermediate_size), profile)
    if args.input_shape is not None and args.classes is not None:
        shape, num_classes = parse_shape(args.input_shape), args.classes
    else:
        shape, num_classes = dataset_shape(config)
    return ExpertRuntime(store, ExpertSpec(config.expert, tuple(shape), num_classes, config.hidden), profile=profile)


def _store(args: EdgeArgs, identity: Identity, members: dict[str, str] | None) -> tuple[BlobStore, str]:
    """The edge's store (storage nodes, their replies checked against the enrolment when given; or the IPFS
    node) and what to call it."""
    if args.ipfs_api is not None:
        return WriteBehindStore(ipfs_store(args.ipfs_api)), f"IPFS node {args.ipfs_api}"
    assert args.stores is not None
    store_urls = parse_urls(args.stores)
    addresses = args.store_addresses or None
    if members is not None and not addresses:
        addresses = trusted_stores(store_urls, identity, members)
    nodes = HttpBlobStore(store_urls, identity, node_addresses=addresses)
    return WriteBehindStore(nodes), f"{len(store_urls)} storage node(s)"


def main(argv: list[str] | None = None) -> None:
    run_command(edge_command, argv, "bmoe edge")

