"""Laying out and starting a local deployment: keys, enrolment, config, then stores, validator, edges.

Owns what ``bmoe cluster up`` does once its flags are checked. Every participant (``publisher``,
``validator-I``, ``edge-I``, storage nodes ``store-J``) gets a fresh random key, ``keys/NAME.key``
(mode 0600), and the enrolment file lists their public keys, which the genesis enrols: nobody who
knows the seed can sign as them. With ``seeded_keys`` (``--seeded-keys``) the keys are derived from
the run seed with the names ``derive_identities`` uses, so the cluster's chain is the in-process
run's, block for block (a reproducible simulation). A key already in ``keys/`` (a cluster brought up
again in its directory) is kept, and must be of the kind asked for. ``operated`` (``--enrol FILE``)
names edges whose operators handed in their public keys and run the edge themselves: the cluster
enrols those keys, makes no key for them and starts no process (their record has no ``argv``).
An edge process starts with its numeric profile (``--profile NAME``, and ``env VAR=VALUE`` before
Python for a profile such as ``mkl-compat`` that must be set before torch loads). Every process is
started detached, by its explicit command line (recorded in ``cluster.json``),
with its output in ``logs/NAME.log``; ``cluster.json`` is rewritten after each start, so
``cluster down`` can always stop what was started, even after a failed ``up``. :func:`restart`
starts one process again by its recorded command line (``bmoe cluster restart NAME``). A cluster on real
engines (:mod:`bmoe.net.cluster.engines`) starts its anvil and js-ipfs daemon first, as processes of
role ``engine``; under ``--store ipfs`` it has no storage nodes: every process is given ``--ipfs-api``.

By default everything listens on 127.0.0.1. :func:`plan` also takes, per process name, the address
a store or the validator listens on (``hosts``) and a prefix for its command line (``wrap``, e.g.
``ip netns exec NS``), so the same cluster can run across network namespaces or hosts; the health
checks of :func:`start` are then made from wherever the caller runs, which must reach those addresses.
"""

from __future__ import annotations

import json
import socket
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

from bmoe.edge.behaviour import EdgeBehaviour
from bmoe.edge.profiles import get_profile
from bmoe.ledger.errors import LedgerError
from bmoe.ledger.keys import (
    Identity,
    PublicIdentity,
    create_identity,
    derive_identity,
    generate_identity,
    load_identity,
)
from bmoe.net.cluster.engines import ENGINE, engine_ready
from bmoe.net.cluster.pids import find_running
from bmoe.net.cluster.processes import alive, spawn, stop
from bmoe.net.cluster_file import CLUSTER_FILE, ClusterDescription, ProcessRecord, load_cluster
from bmoe.net.enrolment import check_enrolment, save_enrolment
from bmoe.net.errors import EnrolmentError, UnauthenticResponse
from bmoe.net.http.auth import SignedAuth
from bmoe.net.node_setup import SetupError
from bmoe.run.config import RunConfig
from bmoe.run.lm.config import LM_CONFIG_FILE
from bmoe.run.setup import behaviours, participant_names

HOST = "127.0.0.1"
CONFIG_FILE = "config.json"
ENROLMENT_FILE = "enrolled.json"


LM_FILE = LM_CONFIG_FILE  # a language model's settings, as in its run directory (the audit reads them there too)
TOKENIZER_FILE = "tokenizer.json"


@dataclass(frozen=True)
class LanguageModelRun:
    """What a language model's deployment adds to a classifier's: its settings (``LMRunConfig.to_dict`` as JSON
    bytes) and its tokenizer's saved bytes."""

    settings: bytes
    tokenizer: bytes


def free_ports(count: int) -> list[int]:
    """``count`` distinct loopback ports that were free a moment ago."""
    socks = []
    try:
        for _ in range(count):
            sock = socket.socket()
            sock.bind((HOST, 0))
            socks.append(sock)
        return [sock.getsockname()[1] for sock in socks]
    finally:
        for sock in socks:
            sock.close()


def refuse_running(root: Path) -> None:
    """A directory whose cluster still has live processes (restarted by hand or not) cannot be brought up again."""
    if not (root / CLUSTER_FILE).exists():
        return
    running = sorted({found.name for found in find_running(load_cluster(root))})
    if running:
        raise SetupError(f"a cluster is running in {root} ({', '.join(running)}); run `bmoe cluster down --dir {root}`")


def _behaviour_record(behaviour: EdgeBehaviour) -> dict[str, object]:
    return dict(behaviour.describe())


def _behaviour_flags(behaviour: EdgeBehaviour) -> list[str]:
    described = dict(behaviour.describe())
    flags = ["--attack", str(described.pop("name"))]
    for key, value in sorted(described.items()):
        flags += ["--attack-param", f"{key}={value!r}"]
    return flags


def validator_processes(config: RunConfig) -> int:
    """Validator processes a deployment of ``config`` runs: every PBFT validator, or the one PoW validator."""
    return config.validators if config.consensus == "pbft" else 1


def _url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def plan(root: Path, config: RunConfig, input_shape: tuple[int, ...], num_classes: int, stores: int,
         replication: int, edge_timeout: float, base_port: int, *, hosts: Mapping[str, str] | None = None,
         wrap: Mapping[str, Sequence[str]] | None = None, engines: Sequence[ProcessRecord] = (),
         ipfs_api: str | None = None, seeded_keys: bool = False,
         operated: Mapping[str, str] | None = None, lm: LanguageModelRun | None = None) -> ClusterDescription:
    """Write keys, enrolment and config under ``root``; the description of every process (none started).

    ``hosts`` maps a store's or the validator's name (``store-J``, ``validator-0``) to the address it
    listens on and is reached at (default 127.0.0.1); ``wrap`` maps any process's name to a command
    prefix its command line starts with (default none). ``engines``: the Ethereum and IPFS nodes the
    cluster starts first (:mod:`bmoe.net.cluster.engines`); ``ipfs_api``: the IPFS node every process
    reads and writes objects on instead of storage nodes (``stores`` is 0 then); ``seeded_keys``: keys derived
    from the seed (a simulation) instead of fresh random ones; ``operated``: edge name -> the public key its
    operator handed in (the cluster does not start that edge); ``lm``: a language model's run (its settings and
    tokenizer, written beside the config and handed to the validator and the edges instead of a dataset's shape)."""
    operated = dict(operated or {})
    edge_names = {f"edge-{i}" for i in range(config.edges_in_play)}
    strangers = sorted(set(operated) - edge_names)
    if strangers:
        raise SetupError(f"--enrol: {', '.join(strangers)} is not an edge of this cluster; operators hand in "
                         f"edges' keys (edge-0 .. edge-{config.edges_in_play - 1}), the cluster makes the rest")
    taken = {derive_identity(config.seed, name).address: name for name in participant_names(config)} \
        if seeded_keys else {}
    try:
        check_enrolment(operated, "--enrol")  # addresses well formed, none twice
    except EnrolmentError as exc:
        raise SetupError(str(exc)) from None
    clash = sorted(name for name, address in operated.items() if taken.get(address, name) != name)
    if clash:
        raise SetupError(f"--enrol: the key of {', '.join(clash)} is another participant's seed-derived key")
    hosts = dict(hosts or {})
    wraps = {name: list(prefix) for name, prefix in (wrap or {}).items()}
    root.mkdir(parents=True, exist_ok=True)
    (root / "keys").mkdir(exist_ok=True)
    (root / "logs").mkdir(exist_ok=True)
    keys: dict[str, Identity | PublicIdentity] = {
        name: PublicIdentity(name, operated[name]) if name in operated else cluster_key(root, config.seed, name,
                                                                                         seeded_keys)
        for name in [*participant_names(config), *(f"store-{j}" for j in range(stores))]}
    publisher = keys["publisher"]
    validators_all = [keys[f"validator-{i}"] for i in range(config.validators)]
    edge_ids = [keys[f"edge-{i}"] for i in range(config.edges_in_play)]
    store_ids = [keys[f"store-{j}"] for j in range(stores)]
    everyone = list(keys.values())
    save_enrolment(root / ENROLMENT_FILE, {identity.name: identity.address for identity in everyone})
    (root / CONFIG_FILE).write_text(json.dumps(config.to_dict(), indent=2, sort_keys=True) + "\n")
    shaped = ["--input-shape", ",".join(map(str, input_shape)), "--classes", str(num_classes)]
    if lm is not None:
        (root / LM_FILE).write_bytes(lm.settings)
        (root / TOKENIZER_FILE).write_bytes(lm.tokenizer)
        shaped = ["--lm", str(root / LM_FILE)]
    n_validators = validator_processes(config)
    ports = (list(range(base_port, base_port + stores + n_validators)) if base_port
             else free_ports(stores + n_validators))
    store_hosts = [hosts.get(identity.name, HOST) for identity in store_ids]
    store_urls = [_url(host, port) for host, port in zip(store_hosts, ports[:stores], strict=True)]
    validators = validators_all[:n_validators]
    validator_hosts = [hosts.get(v.name, HOST) for v in validators]
    validator_urls = [_url(h, ports[stores + i]) for i, h in enumerate(validator_hosts)]
    validator_url = validator_urls[0]
    py = [sys.executable, "-m"]
    common = ["--enrolled", str(root / ENROLMENT_FILE)]
    objects = ["--ipfs-api", ipfs_api] if ipfs_api is not None else ["--stores", ",".join(store_urls)]
    processes = list(engines)
    for j, (identity, url) in enumerate(zip(store_ids, store_urls, strict=True)):
        peers = ",".join(u for u in store_urls if u != url)
        prefix = wraps.get(identity.name, [])
        argv = [*prefix, *py, "bmoe.net.store", "--host", store_hosts[j], "--port", url.rsplit(":", 1)[1],
                "--data-dir", str(root / identity.name), "--key", str(root / "keys" / f"{identity.name}.key"),
                *common, "--replication", str(replication), *(["--peers", peers] if peers else [])]
        processes.append(ProcessRecord(identity.name, "store", url, identity.address, f"keys/{identity.name}.key",
                                       f"logs/{identity.name}.log", argv=argv, index=j, data=identity.name,
                                       host=store_hosts[j], wrap=prefix))
    peers = ",".join(f"{v.name}={u}" for v, u in zip(validators, validator_urls, strict=True))
    for i, validator in enumerate(validators):
        prefix = wraps.get(validator.name, [])
        argv = [*prefix, *py, "bmoe.net.validator", "--config", str(root / CONFIG_FILE),
                "--key", str(root / "keys" / f"{validator.name}.key"), *common, *objects,
                "--host", validator_hosts[i], "--port", str(ports[stores + i]),
                "--run-dir", str(root / validator.name),
                "--edge-timeout", repr(edge_timeout), *shaped,
                *(["--tokenizer", str(root / TOKENIZER_FILE)] if lm is not None else []),
                *(["--peers", peers, "--task-timeout", repr(max(10.0, 3 * edge_timeout))] if n_validators > 1 else [])]
        processes.append(ProcessRecord(validator.name, "validator", validator_urls[i], validator.address,
                                       f"keys/{validator.name}.key", f"logs/{validator.name}.log", argv=argv,
                                       data=validator.name, host=validator_hosts[i], wrap=prefix))
    for index, (identity, behaviour) in enumerate(zip(edge_ids, behaviours(config), strict=True)):
        if identity.name in operated:  # its operator runs it, with the key only the operator holds
            processes.append(ProcessRecord(identity.name, "edge", None, identity.address, "",
                                           f"logs/{identity.name}.log", index=index,
                                           behaviour=_behaviour_record(behaviour)))
            continue
        prefix = wraps.get(identity.name, [])
        profile = get_profile(config.edge_profiles[index])
        environment = ["env", *(f"{key}={value}" for key, value in profile.env)] if profile.env else []
        argv = [*prefix, *environment, *py, "bmoe.net.edge", "--index", str(index), "--profile", profile.name,
                "--validator", ",".join(validator_urls),
                *objects, "--key", str(root / "keys" / f"{identity.name}.key"),
                "--config", str(root / CONFIG_FILE), *common, *shaped,
                *_behaviour_flags(behaviour)]
        processes.append(ProcessRecord(identity.name, "edge", None, identity.address, f"keys/{identity.name}.key",
                                       f"logs/{identity.name}.log", argv=argv, index=index,
                                       behaviour=_behaviour_record(behaviour), wrap=prefix))
    return ClusterDescription(root, config.seed, CONFIG_FILE, list(input_shape), num_classes, edge_timeout,
                              ENROLMENT_FILE, store_urls, validator_url, f"keys/{publisher.name}.key", processes,
                              ipfs_api=ipfs_api, lm=LM_FILE if lm is not None else None,
                              tokenizer=TOKENIZER_FILE if lm is not None else None)


def cluster_key(root: Path, seed: int, name: str, seeded: bool) -> Identity:
    """``root/keys/NAME.key``: kept if it exists (it must be of the kind asked for), else made, never overwritten."""
    path = root / "keys" / f"{name}.key"
    derived = derive_identity(seed, name)
    try:
        if path.exists():
            identity = load_identity(path)
            if (identity.address == derived.address) != seeded:
                kind = "not derived from the seed" if seeded else "derived from the seed (add --seeded-keys)"
                raise SetupError(f"{path} is {kind}: bring this cluster up as it was first, or use a new --dir")
            return identity
        identity = derived if seeded else generate_identity(name)
        create_identity(path, identity)
    except LedgerError as exc:
        raise SetupError(str(exc)) from None
    return identity


def _last_line(path: Path) -> str:
    try:
        lines = [line for line in path.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return ""
    return lines[-1].strip() if lines else ""


def _wait(cluster: ClusterDescription, record: ProcessRecord, ready: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive(record.pid, record.start_time):
            log = cluster.path(record.log)
            raise SetupError(f"{record.name} exited during start-up (see {log}): {_last_line(log)}")
        if ready():
            return
        time.sleep(0.1)
    raise SetupError(f"{record.name} not ready after {timeout:g} s (see {cluster.path(record.log)})")


def _healthy(url: str, address: str) -> Callable[[], bool]:
    def check() -> bool:
        try:
            reply = httpx.get(f"{url}/health", timeout=1.0)
        except httpx.HTTPError:
            return False
        return reply.status_code == 200 and reply.json().get("address") == address

    return check


def _edges_polled(cluster: ClusterDescription, client: httpx.Client, names: list[str]) -> Callable[[], bool]:
    def check() -> bool:
        try:
            reply = client.get(f"{cluster.validator}/stats")
        except (httpx.HTTPError, UnauthenticResponse):
            return False
        return reply.status_code == 200 and set(names) <= set(reply.json().get("edges_last_polled_s_ago", {}))

    return check


def _ready(record: ProcessRecord) -> Callable[[], bool]:
    """Whether ``record`` (a store, a validator or an engine) answers at its URL."""
    assert record.url is not None
    return engine_ready(record) if record.role == ENGINE else _healthy(record.url, record.address)


def start(cluster: ClusterDescription, publisher: SignedAuth, timeout: float,
          announce: Callable[[ProcessRecord], None], engines_ready: Callable[[], None] | None = None) -> None:
    """Start the engines (if any), stores, then the validator, then the edges, each once its predecessors
    are ready; ``engines_ready`` runs once the engines answer (funding the sealing account).

    On failure every process started so far is stopped and the error re-raised."""
    try:
        for role in (ENGINE, "store", "validator"):
            records = cluster.by_role(role)
            for record in records:
                record.pid, record.start_time = spawn(record.argv, cluster.path(record.log))
                cluster.save()
            for record in records:
                _wait(cluster, record, _ready(record), timeout)
                announce(record)
            if role == ENGINE and engines_ready is not None:
                engines_ready()
        edges = [record for record in cluster.by_role("edge") if record.argv]  # not those their operators run
        for record in edges:
            record.pid, record.start_time = spawn(record.argv, cluster.path(record.log))
            cluster.save()
        with httpx.Client(auth=publisher, timeout=2.0) as client:
            for record in edges:
                _wait(cluster, record, _edges_polled(cluster, client, [record.name]), timeout)
                announce(record)
    except BaseException:
        stop([(r.pid, r.start_time) for r in cluster.processes], grace=3.0)
        raise


def _polled_since(cluster: ClusterDescription, client: httpx.Client, name: str, started: float) -> Callable[[], bool]:
    """Whether edge ``name`` has polled some validator since ``started`` (``time.monotonic()``)."""
    def check() -> bool:
        for validator in cluster.by_role("validator"):
            try:
                reply = client.get(f"{validator.url}/stats")
            except (httpx.HTTPError, UnauthenticResponse):
                continue
            ago = reply.json().get("edges_last_polled_s_ago", {}).get(name) if reply.status_code == 200 else None
            if ago is not None and ago < time.monotonic() - started:
                return True
        return False

    return check


def restart(cluster: ClusterDescription, record: ProcessRecord, publisher: SignedAuth, timeout: float,
            grace: float) -> list[int]:
    """Stop whatever runs as ``record`` (its recorded pid, or a process restarted by hand), start it again
    with its recorded command line, record its new pid and start time, and wait until it is ready.

    Returns the pids stopped first. A process that does not become ready is left running (and
    recorded) for its log to be read; :class:`SetupError` says so."""
    if not record.argv:
        raise SetupError(f"{record.name} is run by its operator, with a key this cluster does not hold")
    previous = [found for found in find_running(cluster) if found.name == record.name]
    left = stop([(found.pid, found.start_time) for found in previous], grace)
    if left:
        raise SetupError(f"{record.name} still running after SIGKILL: pids {', '.join(map(str, left))}")
    started = time.monotonic()
    record.pid, record.start_time = spawn(record.argv, cluster.path(record.log))
    cluster.save()
    if record.url is not None:
        _wait(cluster, record, _ready(record), timeout)
    else:
        with httpx.Client(auth=publisher, timeout=2.0) as client:
            _wait(cluster, record, _polled_since(cluster, client, record.name, started), timeout)
    return [found.pid for found in previous]
