"""``bmoe validator``: run the single PoW validator of a deployment (``python -m bmoe.net.validator``).

Owns the validator's command line: read the settings (from ``--cluster-dir`` and/or explicit flags;
flags win), check them, open the ``Session`` over the storage nodes with :class:`NetworkEdges` as
its edges, bind, serve. Bad flags or files print one line and exit 2 before anything is bound.

    python -m bmoe.net.validator --cluster-dir D
    python -m bmoe.net.validator --config config.json --key validator-0.key --enrolled enrolled.json \\
        --stores http://127.0.0.1:7001,http://127.0.0.1:7002 --port 7100 --run-dir runs/v0 --edge-timeout 10

Who takes part is the enrolment's (``--enrolled``): the validator's key must be enrolled as a validator
(validator-0 under PoW). Under PBFT with keys nobody else knows, validator-0 writes the genesis and
the others fetch it from validator-0 (:mod:`bmoe.net.validator.genesis_fetch`) and check it is the one these
settings and this enrolment give.

``--ipfs-api URL`` instead of ``--stores``: the objects live on that IPFS node (``--store ipfs``). Under
consensus ``ethereum`` the one validator seals every block through the run's contract on the config's
``rpc_url`` (deployed when the chain is new).

The validator holds no training data: tasks carry their samples. ``Session`` still wants a dataset
for the input shape and the classes; ``--input-shape``/``--classes`` give them, else the config's
dataset is loaded once to read them (digits and synthetic are offline and quick).
"""

from __future__ import annotations

from pathlib import Path

import click

from bmoe.ledger.keys import load_identity
from bmoe.ledger.node import Sealer
from bmoe.ledger.sealing import validators_supported
from bmoe.net.cli_support import run_command
from bmoe.net.cluster_file import load_cluster
from bmoe.net.enrolment import load_enrolment
from bmoe.net.http.serve import bind, url_of
from bmoe.net.http.stats import Counters
from bmoe.net.node_setup import (
    SetupError,
    dataset_shape,
    load_run_config,
    parse_shape,
    run_identities,
    shape_only_dataset,
)
from bmoe.net.validator.genesis_fetch import founding_block
from bmoe.net.validator.network_edges import NetworkEdges
from bmoe.net.validator.pbft_service import PbftValidatorService
from bmoe.net.validator.service import DEFAULT_VALIDATOR_MAX_BODY, ValidatorService, ValidatorSettings
from bmoe.net.validator.startup import (
    DEFAULT_EDGE_TIMEOUT_S,
    ValidatorArgs,
    object_stores,
    serve_validator,
    write_behind_store,
)
from bmoe.run.config import RunConfig
from bmoe.run.session import Session
from bmoe.run.setup import held_name
from bmoe.verify.framework import framework_of

PBFT_UNSUPPORTED = ("a deployment runs one PoW validator, or n >= 4 PBFT validators (consensus pbft, "
                    "--validators 4 or more), or one validator sealing on Ethereum (--ledger ethereum)")


def parse_peers(text: str) -> dict[str, str]:
    """``validator-0=http://...,validator-1=http://...`` -> {name: url}."""
    peers = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, sep, url = item.partition("=")
        if not sep or not name or not url.startswith("http"):
            raise SetupError(f"--peers: {item!r} is not NAME=URL")
        peers[name] = url.rstrip("/")
    return peers


def from_cluster(root: Path) -> ValidatorArgs:
    """The validator's settings as ``cluster.json`` records them."""
    cluster = load_cluster(root)
    record = cluster.by_role("validator")[0]
    port = int(cluster.validator.rsplit(":", 1)[1])
    return ValidatorArgs(cluster.path(cluster.config), cluster.path(record.key), cluster.path(cluster.enrolment),
                         None if cluster.ipfs_api else ",".join(cluster.stores), cluster.ipfs_api,
                         record.host or "127.0.0.1", port, cluster.run_dir(record), cluster.edge_timeout,
                         ",".join(map(str, cluster.input_shape)), cluster.num_classes,
                         cluster.path(cluster.lm) if cluster.lm else None,
                         cluster.path(cluster.tokenizer) if cluster.tokenizer else None)


def check_single_validator(config: RunConfig) -> None:
    if not validators_supported(config.consensus, config.validators, one_process_each=True):  # PBFT: ``--peers``
        raise SetupError(PBFT_UNSUPPORTED)
    if not framework_of(config.framework).keeps_ledger and config.consensus != "pow":
        raise SetupError("the traditional framework has one server and no consensus: use --consensus pow "
                         "(ignored) with one validator")


@click.command("validator", help="Run the validator: the round's ledger side, edges and publisher over HTTP.")
@click.option("--cluster-dir", type=click.Path(path_type=Path), default=None,
              help="read every setting from DIR/cluster.json (explicit flags override)")
@click.option("--config", "config_file", type=click.Path(path_type=Path), default=None, help="RunConfig JSON")
@click.option("--key", "key_file", type=click.Path(path_type=Path), default=None, help="validator-0's identity file")
@click.option("--enrolled", type=click.Path(path_type=Path), default=None,
              help="enrolment file: publisher, edges, validators (and the storage nodes)")
@click.option("--stores", default=None, help="comma-separated storage node URLs")
@click.option("--ipfs-api", default=None, metavar="URL",
              help="instead of --stores: the IPFS node (kubo HTTP RPC) holding the objects")
@click.option("--host", default=None, help="address to listen on [default: 127.0.0.1]")
@click.option("--port", type=click.IntRange(0, 65535), default=None, help="0 picks a free port [default: 0]")
@click.option("--run-dir", type=click.Path(path_type=Path), default=None, help="where the chain lives (SQLite)")
@click.option("--edge-timeout", type=click.FloatRange(min=0.01), default=None,
              help=f"seconds to wait for edges' answers per step [default: {DEFAULT_EDGE_TIMEOUT_S:g}]")
@click.option("--input-shape", default=None, help="e.g. 1,8,8 [default: read from the config's dataset]")
@click.option("--classes", type=click.IntRange(min=2), default=None, help="number of classes")
@click.option("--peers", default=None, help="PBFT: every validator as NAME=URL, comma-separated (itself included)")
@click.option("--pbft-timeout", type=click.FloatRange(min=0.05), default=2.0, show_default=True,
              help="PBFT: the replica's request timer, in seconds")
@click.option("--task-timeout", type=click.FloatRange(min=0.1), default=30.0, show_default=True,
              help="PBFT: a backup votes the primary out when a published task is unsealed this long")
@click.option("--max-body", type=click.IntRange(min=1), default=DEFAULT_VALIDATOR_MAX_BODY, show_default=True,
              help="largest request body in bytes")
@click.option("--lm", "lm_file", type=click.Path(path_type=Path), default=None,
              help="a language model's run: its settings (lm.json, as `bmoe lm cluster` writes it); --config is "
                   "then its protocol part")
@click.option("--tokenizer", "tokenizer_file", type=click.Path(path_type=Path), default=None,
              help="with --lm: the run's tokenizer (its saved bytes)")
def validator_command(cluster_dir: Path | None, config_file: Path | None, key_file: Path | None,
                      enrolled: Path | None, stores: str | None, ipfs_api: str | None, host: str | None,
                      port: int | None,
                      run_dir: Path | None, edge_timeout: float | None, input_shape: str | None,
                      classes: int | None, peers: str | None, pbft_timeout: float, task_timeout: float,
                      max_body: int, lm_file: Path | None, tokenizer_file: Path | None) -> None:
    args = from_cluster(cluster_dir) if cluster_dir is not None else ValidatorArgs()
    if stores is not None and ipfs_api is not None:
        raise click.UsageError("give --stores or --ipfs-api, not both")
    if stores is not None or ipfs_api is not None:
        args.stores, args.ipfs_api = stores, ipfs_api
    for name, value in (("config", config_file), ("key", key_file), ("enrolled", enrolled), ("host", host),
                        ("port", port), ("run_dir", run_dir), ("edge_timeout", edge_timeout),
                        ("input_shape", input_shape), ("classes", classes), ("lm", lm_file),
                        ("tokenizer", tokenizer_file)):
        if value is not None:
            setattr(args, name, value)
    missing = [flag for flag, value in (("--config", args.config), ("--key", args.key), ("--enrolled", args.enrolled),
                                        ("--stores or --ipfs-api", args.stores or args.ipfs_api),
                                        ("--run-dir", args.run_dir)) if value is None]
    if missing:
        raise click.UsageError(f"missing {', '.join(missing)} (or give --cluster-dir)")
    assert args.config and args.key and args.enrolled and args.run_dir
    if args.lm is not None:
        from bmoe.net.validator.lm_command import serve_language_model

        serve_language_model(args, max_body)
        return
    config = load_run_config(args.config)
    check_single_validator(config)
    identity = load_identity(args.key)
    members = load_enrolment(args.enrolled)
    pbft = config.consensus == "pbft"
    roles = [f"validator-{i}" for i in range(config.validators)] if pbft else ["validator-0"]
    ids = run_identities(config, members, identity, roles)
    if pbft:
        peer_urls = parse_peers(peers or "")
        if set(peer_urls) != {v.name for v in ids.validators}:
            raise SetupError(f"--peers must name every validator: {', '.join(v.name for v in ids.validators)}")
    if args.run_dir.exists() and not args.run_dir.is_dir():
        raise SetupError(f"--run-dir {args.run_dir} exists and is not a directory")
    if args.input_shape is not None and args.classes is not None:
        shape, num_classes = parse_shape(args.input_shape), args.classes
    else:
        shape, num_classes = dataset_shape(config)
    stores_at = object_stores(args, identity, members)
    genesis = None
    if pbft and not ids.seeded and held_name(ids) != "validator-0":
        genesis = founding_block(args.run_dir, peer_urls["validator-0"], identity, ids.validator.address)
    try:
        sock = bind(args.host, args.port or 0)
    except OSError as exc:
        raise SetupError(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}") from None
    url = url_of(sock)
    counters = Counters()
    session_store = write_behind_store(stores_at)
    edges = NetworkEdges(session_store, args.edge_timeout or DEFAULT_EDGE_TIMEOUT_S, counters,
                         routed_rows=not pbft)  # under PBFT edges compute on what the ledger's CIDs name
    settings = ValidatorSettings(identity, members, url, max_body=max_body)
    dataset = shape_only_dataset(config.dataset, shape, num_classes)

    def open_session(sealer: Sealer | None = None) -> Session:  # PBFT: the service's own sealer
        return Session(config, dataset=dataset, run_dir=args.run_dir, store=session_store, gateway=edges,
                       sealer=sealer, identities=None if ids.seeded else ids, genesis=genesis)

    reexec_store = stores_at() if pbft else None
    try:
        if reexec_store is not None:
            service: ValidatorService = PbftValidatorService(open_session, edges, session_store, reexec_store, settings,
                                                             counters, peer_urls, pbft_timeout=pbft_timeout,
                                                             task_timeout=task_timeout)
        else:
            service = ValidatorService(open_session(), edges, session_store, settings, counters)
    except BaseException:
        sock.close()
        raise
    node = service.session.node
    serve_validator(service, sock, edges, lambda: f"bmoe validator: listening on {url}, key {identity.address}, "
                    f"run dir {args.run_dir}, height {node.view().height}, head {node.head_hash}, edge timeout "
                    f"{edges.timeout:g} s", [session_store, *([reexec_store] if reexec_store else [])])


def main(argv: list[str] | None = None) -> None:
    run_command(validator_command, argv, "bmoe validator")

