"""``bmoe cluster up | status | restart | down``: a whole deployment on this machine (``bmoe.cli.cluster``).

Owns the command line of a local cluster: checking the settings (one line and exit 2 on bad input,
before anything is written), then :mod:`bmoe.net.cluster.launch` to lay it out and start it,
``status`` to report each process and the validator's head, ``restart NAME`` to start one process
again by its recorded command line, ``down`` to stop everything (SIGTERM, then SIGKILL after a
grace period) and check that nothing is left. ``status``, ``restart`` and ``down`` find a process
someone restarted by hand too (:mod:`bmoe.net.cluster.pids`).

    bmoe cluster up --dir D --edges 10 --stores 2 --malicious 0.3 --attack gaussian --seed 0
    bmoe cluster up --dir D --edges 4 --fleet default=2,f64=1,mkl-compat=1 --comparison tolerance
    bmoe cluster up --dir D --edges 4 --enrol enrol.txt   (edge-I KEY lines: edges their operators run)
    bmoe cluster up --dir D --edges 4 --seeded-keys       (keys from --seed: a reproducible simulation)
    bmoe train --cluster D --rounds 20          (= bmoe publish --cluster-dir D --rounds 20)
    bmoe cluster status --dir D
    bmoe cluster restart --dir D store-0
    bmoe cluster down --dir D
    bmoe cluster up --dir D --edges 4 --ledger ethereum --store ipfs   (starts an anvil and a js-ipfs daemon)
    bmoe cluster up --dir D --edges 4 --ledger ethereum --rpc-url URL --store ipfs --ipfs-api URL   (your nodes)

Every participant gets a fresh random key (``keys/NAME.key``), enrolled in ``enrolled.json`` and, by the
validator, in the genesis (:mod:`bmoe.net.cluster.launch`).

One validator mines every block (PoW), or ``--consensus pbft --validators n`` (n >= 4) runs one PBFT
replica per validator process. Edges whose numeric profiles (``--fleet``) compute differently need
``--comparison tolerance``: under exact comparison such a fleet is refused before anything is
written (:mod:`bmoe.net.fleet_check`). ``--framework traditional`` runs the paper's baseline instead: one
server without a ledger or verification, edge i hosting expert i (for latency comparisons).
``--ledger ethereum`` seals every block through the run's contract on an Ethereum node (one validator),
``--store ipfs`` keeps every object on an IPFS node instead of storage nodes: without ``--rpc-url`` /
``--ipfs-api`` the cluster starts the node itself, as a process of role ``engine``
(:mod:`bmoe.net.cluster.engines`).
"""

from __future__ import annotations

import ipaddress
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import httpx

from bmoe.cli.comparison_options import comparison_options, comparison_settings
from bmoe.cli.errors import UserError
from bmoe.cli.finite import FiniteFloatRange
from bmoe.edge.behaviour import make_behaviour
from bmoe.ledger.keys import load_identity
from bmoe.ledger.sealing import validators_supported
from bmoe.net.cli_support import EXIT_STALLED, run_command
from bmoe.net.cluster.engines import (
    ENGINE,
    check_engines,
    config_changes,
    engine_ready,
    engine_records,
    fund_sealer,
    parse_engines,
    planned_urls,
)
from bmoe.net.cluster.launch import free_ports, plan, refuse_running, restart, start, validator_processes
from bmoe.net.cluster.pids import Running, find_running
from bmoe.net.cluster.processes import DEFAULT_GRACE_S, stop
from bmoe.net.cluster_file import ClusterDescription, ProcessRecord, load_cluster
from bmoe.net.enrolment import load_enrolment
from bmoe.net.errors import EnrolmentError, UnauthenticResponse
from bmoe.net.fleet_check import MixedFleet, check_fleet
from bmoe.net.http.auth import SignedAuth
from bmoe.net.node_setup import SetupError, dataset_shape, load_run_config
from bmoe.net.validator.command import PBFT_UNSUPPORTED, check_single_validator
from bmoe.run.config import ConfigError, RunConfig, from_dict
from bmoe.run.config_file import read_run_config
from bmoe.run.flag_effects import check_given_settings
from bmoe.run.settings.options import given_settings, setting_options
from bmoe.run.settings.setting import CLUSTER_UP
from bmoe.verify.framework import framework_of

COMPARISON_FLAGS = ("comparison", "bound", "update_bound", "bound_from", "force_bound")  # comparison_settings's order


@click.group("cluster", help="A local deployment: storage nodes, one validator and M edges as processes.")
def cluster_group() -> None:
    pass


def _comparison_changes(values: dict[str, Any], comparison: str | None, bound: float | None,
                        update_bound: float | None, bound_from: Path | None, force_bound: bool) -> dict[str, Any]:
    """The config changes the comparison flags give; the base config's comparison when none is named."""
    try:
        return comparison_settings(comparison, bound, update_bound, bound_from, force_bound,
                                   default=values["comparison"])
    except UserError as exc:  # `bmoe cluster` reports SetupError in one line, exit 2
        raise SetupError(str(exc)) from None


def _config(base: Path | None, settings: dict[str, Any], engine_changes: dict[str, Any] | None = None) -> RunConfig:
    """The config ``up``'s flags give over ``--config`` (a RunConfig JSON, or a TOML settings file), else over
    the defaults."""
    try:
        values = read_run_config(base).to_dict() if base is not None else RunConfig().to_dict()
        given = given_settings(CLUSTER_UP, settings)  # each option's parameter is its setting's name
    except ConfigError as exc:
        raise SetupError(str(exc)) from None
    changes = _comparison_changes(values, *(settings[flag] for flag in COMPARISON_FLAGS))
    changes.update(given)
    if engine_changes and "consensus" in engine_changes and settings["consensus"] not in (None, "pow", "ethereum"):
        raise SetupError(f"--ledger ethereum seals every block through its contract: drop --consensus "
                         f"{settings['consensus']}")
    changes.update(engine_changes or {})
    validators = changes.get("validators", values["validators"])
    consensus = changes.get("consensus", values["consensus"])
    if not validators_supported(consensus, validators, one_process_each=True):
        raise SetupError(PBFT_UNSUPPORTED)
    try:
        config = from_dict({**values, **changes})
        make_behaviour(config.attack, **config.attack_params)
        check_given_settings(config, given)  # a flag without effect is refused, not ignored
    except (ConfigError, ValueError, TypeError) as exc:
        raise SetupError(str(exc)) from None
    check_single_validator(config)
    try:
        check_fleet(config)  # honest edges that cannot agree bit for bit under exact: refused, not recorded
    except MixedFleet as exc:
        raise SetupError(str(exc)) from None
    return config


def _listen_addresses(values: tuple[str, ...], config: RunConfig, stores: int) -> dict[str, str]:
    """``--listen NAME=ADDRESS`` for the processes that listen: stores and validators."""
    names = [*(f"store-{j}" for j in range(stores)), *(f"validator-{i}" for i in range(validator_processes(config)))]
    hosts = {}
    for value in values:
        name, sep, address = value.partition("=")
        if not sep or name not in names:
            raise SetupError(f"--listen {value!r}: expected NAME=ADDRESS with NAME one of {', '.join(names)}")
        try:
            ipaddress.ip_address(address)
        except ValueError:
            raise SetupError(f"--listen {value!r}: {address!r} is not an IP address") from None
        hosts[name] = address
    return hosts


def _operated(path: Path | None) -> dict[str, str]:
    """``--enrol FILE``: edge name -> the public key its operator handed in (empty without the flag)."""
    if path is None:
        return {}
    try:
        return load_enrolment(path)
    except EnrolmentError as exc:
        raise SetupError(f"--enrol: {exc}") from None


def _row(record: ProcessRecord, cluster: ClusterDescription, state: str = "", pid: int | None = None) -> str:
    where = record.url or "-"
    pid = record.pid if pid is None else pid
    return f"  {record.name:<12} {record.role:<9} {where:<24} pid {pid!s:<8} {state}{cluster.path(record.log)}"


def announce_row(cluster: ClusterDescription) -> Callable[[ProcessRecord], None]:
    """What ``up`` prints as each process becomes ready."""
    def announce(record: ProcessRecord) -> None:
        click.echo(_row(record, cluster, "ready  "))
        sys.stdout.flush()

    return announce


def publisher_auth(cluster: ClusterDescription) -> SignedAuth:
    """The publisher's key, trusting the validators' replies (their addresses as the cluster enrolled them)."""
    return SignedAuth(load_identity(cluster.path(cluster.publisher_key)),
                      trusted=[v.address for v in cluster.by_role("validator")])


@cluster_group.command("up", help="Lay out keys, enrolment and config in DIR, then start stores, validator, edges.")
@click.option("--dir", "root", type=click.Path(path_type=Path), required=True, help="the cluster's directory")
@click.option("--config", "base_config", type=click.Path(path_type=Path), default=None,
              help="a RunConfig JSON, or a TOML settings file (.toml, docs/configuration.md), to start from "
                   "(the flags below override it)")
@click.option("--stores", type=click.IntRange(min=1), default=None, help="storage nodes [2]")
@click.option("--replication", type=click.IntRange(min=1), default=None, help="copies per blob [min(2, stores)]")
@setting_options(CLUSTER_UP)
@comparison_options
@click.option("--edge-timeout", type=FiniteFloatRange(min=0.01), default=30.0, show_default=True,
              help="seconds the validator waits for edges per step")
@click.option("--base-port", type=click.IntRange(0, 65000), default=0, show_default=True,
              help="stores on PORT.., the validator after them (0: free ports)")
@click.option("--start-timeout", type=FiniteFloatRange(min=1), default=60.0, show_default=True,
              help="seconds each process has to become ready")
@click.option("--listen", "listen", multiple=True, metavar="NAME=ADDRESS",
              help="where a store or validator listens and is reached (e.g. store-1=127.0.0.2), repeatable "
                   "[127.0.0.1]")
@click.option("--ledger", type=click.Choice(["bmoe", "ethereum"]), default=None,
              help="bmoe (its own chain, sealed by --consensus) or ethereum (the run's contract on an Ethereum "
                   "node; one validator) [bmoe]")
@click.option("--rpc-url", default=None, metavar="URL",
              help="--ledger ethereum: your node's JSON-RPC URL, its sealing account funded [an anvil the "
                   "cluster starts and funds]")
@click.option("--eth-key", type=click.Path(path_type=Path), default=None, metavar="FILE",
              help="--ledger ethereum: the sealing account's private key (hex) [derived from the seed]")
@click.option("--store", "object_store", type=click.Choice(["bmoe", "ipfs"]), default=None,
              help="where objects live: bmoe's storage nodes (--stores) or an IPFS node [bmoe]")
@click.option("--ipfs-api", default=None, metavar="URL",
              help="--store ipfs: your node's kubo HTTP RPC URL [a js-ipfs daemon the cluster starts]")
@click.option("--enrol", "enrol_file", type=click.Path(path_type=Path), default=None, metavar="FILE",
              help="public keys operators hand in for edges they run themselves, one role and key a line "
                   "(edge-3 <hex>, as `bmoe keygen` prints): enrolled, and not started by the cluster")
@click.option("--seeded-keys", is_flag=True,
              help="derive every key from --seed, as an in-process run does (a reproducible simulation: anyone "
                   "who knows the seed signs as anyone; the genesis says so) [fresh random keys]")
def up_command(root: Path, base_config: Path | None, stores: int | None, replication: int | None,
               edge_timeout: float, base_port: int, start_timeout: float,
               listen: tuple[str, ...], ledger: str | None, rpc_url: str | None, eth_key: Path | None,
               object_store: str | None, ipfs_api: str | None, enrol_file: Path | None, seeded_keys: bool,
               **settings: Any) -> None:
    engines = parse_engines(ledger, rpc_url, eth_key, object_store, ipfs_api)
    if engines.store == "ipfs" and (stores is not None or replication is not None):
        raise SetupError("--stores and --replication size bmoe's storage nodes: under --store ipfs every object "
                         "lives on the IPFS node")
    stores = 0 if engines.store == "ipfs" else (stores if stores is not None else 2)
    rpc_url, ipfs_api = planned_urls(engines, free_ports(engines.starts_anvil + engines.starts_ipfs))
    config = _config(base_config, settings, config_changes(engines, rpc_url, ipfs_api))
    hosts = _listen_addresses(listen, config, stores)
    replication = replication if replication is not None else min(2, stores)
    if replication > stores:
        raise SetupError(f"--replication {replication} needs at least {replication} storage nodes, got {stores}")
    if root.exists() and not root.is_dir():
        raise SetupError(f"--dir {root} exists and is not a directory")
    refuse_running(root)
    operated = _operated(enrol_file)
    shape, num_classes = dataset_shape(config)
    check_engines(engines, config)  # engines installed, named nodes answering, the account funded
    cluster = plan(root.resolve(), config, shape, num_classes, stores, replication, edge_timeout, base_port,
                   hosts=hosts, engines=engine_records(root.resolve(), engines, rpc_url, ipfs_api),
                   ipfs_api=ipfs_api if engines.store == "ipfs" else None, seeded_keys=seeded_keys,
                   operated=operated)
    cluster.save()
    attackers = config.malicious_edges
    validators = len(cluster.by_role("validator"))
    sealing = ("1 server (traditional: no ledger)" if not framework_of(config.framework).keeps_ledger
              else f"{validators} validator(s) ({config.consensus}{f' on {rpc_url}' if engines.rpc_url else ''})")
    objects = (f"{stores} storage node(s)" if engines.store != "ipfs"
               else f"objects on the IPFS node at {ipfs_api}" if engines.ipfs_api else "a js-ipfs node (objects)")
    anvil = "an anvil (Ethereum), " if engines.starts_anvil else ""
    keys = "keys derived from the seed" if seeded_keys else "fresh keys"
    click.echo(f"bmoe cluster: starting {anvil}{objects}, {sealing}, "
               f"{config.edges_in_play} edges ({attackers} running {config.attack if attackers else 'no attack'}) "
               f"in {cluster.root}, {keys}")
    described = config.bound_in_force()
    if described is not None:
        click.echo(f"bound in force: {described}")
    publisher = publisher_auth(cluster)
    start(cluster, publisher, start_timeout, announce_row(cluster),
          engines_ready=(lambda: fund_sealer(config)) if engines.starts_anvil else None)
    for record in cluster.by_role("edge"):
        if not record.argv:
            click.echo(f"  {record.name:<12} edge      run by its operator: bmoe edge --cluster-dir {cluster.root} "
                       f"--index {record.index} --key THEIR-KEY-FILE")
    urls = ", ".join(r.url for r in cluster.by_role("validator") if r.url)
    role = "validator" if framework_of(config.framework).keeps_ledger else "server"
    click.echo(f"ready: {role}(s) {urls}; publish with "
               f"`bmoe train --cluster {cluster.root} --rounds N`; "
               f"stop with `bmoe cluster down --dir {cluster.root}`")


@cluster_group.command("status", help="Each process's state and health, and every validator's head.")
@click.option("--dir", "root", type=click.Path(path_type=Path), required=True)
def status_command(root: Path) -> None:
    cluster = load_cluster(root)
    config = load_run_config(cluster.path(cluster.config))
    down = 0
    validators = cluster.by_role("validator")
    found: dict[str, Running] = {}
    for running in find_running(cluster):
        found.setdefault(running.name, running)
    with httpx.Client(auth=publisher_auth(cluster), timeout=2.0) as client:
        polled: dict[str, float] = {}
        stalls: dict[str, dict[str, Any]] = {}  # validator -> its quorum watch (protocol/quorum_watch.py)
        for validator in validators:
            stats = _validator_get(client, f"{validator.url}/stats")
            polled.update(stats.get("edges_last_polled_s_ago", {}))
            stalls[validator.name] = stats.get("quorum") or {}
        for record in cluster.processes:
            process = found.get(record.name)
            down += process is None
            state = "stopped" if process is None else "running" if process.recorded else "running (by hand)"
            if process and record.url:
                healthy = engine_ready(record)() if record.role == ENGINE else _health(record.url)
                state += ", healthy" if healthy else ", not answering"
            elif process and record.name in polled:
                state += f", polled {polled[record.name]:.1f} s ago"
            click.echo(_row(record, cluster, f"{state:<37} ", process.pid if process else None))
        for validator in validators:
            head = _validator_get(client, f"{validator.url}/head")
            if not head:
                click.echo(f"{validator.name}: not answering")
                continue
            where = ""
            if len(validators) > 1:
                primary = _validator_get(client, f"{validator.url}/primary")
                where = f", view {primary.get('view')} (primary {primary.get('primary')})" if primary else ""
            done = "sealed" if framework_of(config.framework).keeps_ledger else "recorded (no ledger)"
            click.echo(f"{validator.name}: head {head['head_hash']} at height {head['height']}{where}: "
                       f"{head['train_tasks']} training and {head['task_count'] - head['train_tasks']} "
                       f"inference tasks {done}")
            if framework_of(config.framework).verifies:  # the traditional framework: no quorum to watch
                click.echo(_quorum_line(validator.name, stalls.get(validator.name, {})))
    if down:
        sys.exit(1)
    if any(watch.get("stalled") for watch in stalls.values()):
        sys.exit(EXIT_STALLED)


def _quorum_line(name: str, watch: dict[str, Any]) -> str:
    """A validator's quorum watch in one line: quiet while tasks reach quorum, loud once stalled."""
    if not watch:
        return f"{name}: quorum unknown (no /stats)"
    streak, after = watch.get("no_quorum_streak", 0), watch.get("stall_after", 0)
    if watch.get("stalled"):
        return f"{name}: STALLED: {watch.get('stall')}"
    return (f"{name}: quorum ok ({watch.get('no_quorum_tasks', 0)} tasks without quorum so far, "
            f"{streak} in a row; a stall at {after or 'never'})")


def _health(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health", timeout=2.0).status_code == 200
    except httpx.HTTPError:
        return False


def _validator_get(client: httpx.Client, url: str) -> dict[str, Any]:
    try:
        reply = client.get(url)
    except (httpx.HTTPError, UnauthenticResponse):
        return {}
    return dict(reply.json()) if reply.status_code == 200 else {}


@cluster_group.command("down", help="Stop every process of the cluster (SIGTERM, SIGKILL after the grace period).")
@click.option("--dir", "root", type=click.Path(path_type=Path), required=True)
@click.option("--grace", type=FiniteFloatRange(min=0), default=DEFAULT_GRACE_S, show_default=True,
              help="seconds between SIGTERM and SIGKILL")
def down_command(root: Path, grace: float) -> None:
    cluster = load_cluster(root)
    found = find_running(cluster)  # the recorded processes, and any restarted by hand
    rank = {"edge": 0, "validator": 1, "store": 2, ENGINE: 3}
    roles = {record.name: record.role for record in cluster.processes}
    running = sorted(found, key=lambda process: rank.get(roles[process.name], 0))
    left = stop([(process.pid, process.start_time) for process in running], grace)
    if left:
        click.echo(f"error: still running after SIGKILL: pids {', '.join(map(str, left))}", err=True)
        sys.exit(1)
    for record in cluster.processes:
        record.pid, record.start_time = None, None
    cluster.save()
    click.echo(f"bmoe cluster: stopped {len(running)} process(es) in {cluster.root}; none left")


@cluster_group.command("restart", help="Stop NAME if it runs, start it again with its recorded command line, "
                                       "record its new pid, wait until it is ready.")
@click.option("--dir", "root", type=click.Path(path_type=Path), required=True)
@click.argument("name")
@click.option("--grace", type=FiniteFloatRange(min=0), default=DEFAULT_GRACE_S, show_default=True,
              help="seconds between SIGTERM and SIGKILL, if NAME is running")
@click.option("--start-timeout", type=FiniteFloatRange(min=1), default=60.0, show_default=True,
              help="seconds NAME has to become ready")
def restart_command(root: Path, name: str, grace: float, start_timeout: float) -> None:
    cluster = load_cluster(root)
    record = cluster.process(name)
    stopped = restart(cluster, record, publisher_auth(cluster), start_timeout, grace)
    was = f" (stopped pid {', '.join(map(str, stopped))})" if stopped else ""
    click.echo(_row(record, cluster, "ready  ") + was)


def main(argv: list[str] | None = None) -> None:
    run_command(cluster_group, argv, "bmoe cluster")

