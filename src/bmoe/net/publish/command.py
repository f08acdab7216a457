"""The task publisher of a deployment: store and sign each task, post it to the validator, wait until sealed.

Owns :func:`publish_training` (the rounds of ``Session.train``, in the same data order, through
``publish_task`` of ``protocol/round.py``), :func:`publish_inference` (the test set, as
``Session.infer_test_set`` serves it), the small signed client they use (:class:`ValidatorClient`),
and ``bmoe publish`` (``python -m bmoe.net.publish``):

    python -m bmoe.net.publish --cluster-dir D --rounds 3
    python -m bmoe.net.publish --cluster-dir D --infer --limit 200
    python -m bmoe.net.publish --validator URL --ipfs-api URL --key K --config C --rounds 3   (--store ipfs)

The publisher continues from the ledger: its first round is the validator's count of sealed
training tasks, its first nonce the sealed one plus 1 (``GET /head``).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import click
import httpx

from bmoe.data import Dataset, load_dataset, task_batches
from bmoe.ledger.keys import Identity, load_identity
from bmoe.ledger.node import Signer
from bmoe.ledger.transactions import Transaction, tx_to_dict
from bmoe.moe.payloads import decode_result
from bmoe.net.cli_support import run_command
from bmoe.net.cluster_file import load_cluster
from bmoe.net.enrolment import load_enrolment
from bmoe.net.errors import NetError
from bmoe.net.frames import FRAME_MEDIA_TYPE, encode_frame
from bmoe.net.http.auth import SignedAuth
from bmoe.net.http.tcp import client_transport
from bmoe.net.node_setup import ipfs_store, load_run_config, parse_urls, run_identities
from bmoe.net.store.client import HttpBlobStore
from bmoe.protocol.quorum_watch import QuorumStalled
from bmoe.protocol.round import publish_task
from bmoe.run.config import RunConfig
from bmoe.run.setup import derive_identities
from bmoe.storage import BlobStore, MemoryStore

DEFAULT_TASK_TIMEOUT_S = 300.0
RoundCallback = Callable[[dict[str, Any]], None]


class PublishError(NetError):
    """The validator refused a task, the task failed, or it was not sealed in time (one-line reason)."""


class ValidatorClient:
    """Signed requests to a validator; its replies must be signed by ``validator_address`` (when given)."""

    def __init__(self, url: str, identity: Identity, validator_address: str | None = None,
                 timeout: float = 30.0, trusted_all: list[str] | None = None) -> None:
        self.url = url.rstrip("/")
        trusted = trusted_all if validator_address is None and trusted_all else (
            None if validator_address is None else [validator_address])
        self.client = httpx.Client(auth=SignedAuth(identity, trusted), timeout=httpx.Timeout(timeout, connect=2.0),
                                   transport=client_transport())

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> ValidatorClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _get(self, path: str, **params: str) -> httpx.Response:
        try:
            return self.client.get(f"{self.url}{path}", params=params)
        except httpx.HTTPError as exc:
            raise PublishError(f"validator {self.url} unreachable: {exc}") from None

    def _get_json(self, path: str) -> dict[str, Any]:
        """A signed ``GET path``'s JSON object; :class:`PublishError` unless the reply is a 200."""
        reply = self._get(path)
        if reply.status_code != 200:
            raise PublishError(f"GET {path}: {reply.status_code} {reply.text[:200]}")
        return dict(reply.json())

    def head(self) -> dict[str, Any]:
        return self._get_json("/head")

    def stats(self) -> dict[str, Any]:
        return self._get_json("/stats")

    def submit(self, tx: Transaction, data: Mapping[str, bytes] | None = None) -> dict[str, Any]:
        """Post ``tx``; with ``data`` (its data's CID -> bytes), in one frame with the task: the validator stores
        the data (durable before it seals), so the publisher stores nothing first."""
        try:
            if data:
                frame = encode_frame({"transaction": tx_to_dict(tx)}, data)
                reply = self.client.post(f"{self.url}/tasks", content=frame, headers={"content-type": FRAME_MEDIA_TYPE})
            else:
                reply = self.client.post(f"{self.url}/tasks", json=tx_to_dict(tx))
        except httpx.HTTPError as exc:
            raise PublishError(f"validator {self.url} unreachable: {exc}") from None
        if reply.status_code != 202:
            raise PublishError(f"task {tx.payload.get('task_id')} refused: {reply.status_code} {_refusal(reply)}")
        return dict(reply.json())

    def task(self, task_id: str) -> dict[str, Any]:
        return self._get_json(f"/tasks/{task_id}")

    def wait_sealed(self, task_id: str, timeout: float = DEFAULT_TASK_TIMEOUT_S, poll: float = 0.02) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            status = self.task(task_id)
            if status["status"] in ("sealed", "done"):  # done: a traditional server, no ledger
                return status
            if status["status"] == "failed":
                raise PublishError(f"task {task_id} failed at the validator: {status.get('error')}")
            if time.monotonic() > deadline:
                raise PublishError(f"task {task_id} not sealed within {timeout:g} s (status {status['status']})")
            time.sleep(poll)


def carried(scratch: MemoryStore, tx: Transaction) -> dict[str, bytes]:
    """The data of task ``tx``, taken out of the publisher's ``scratch`` store, to travel with the task."""
    cid = str(tx.payload["data_cid"])
    data = scratch.get(cid)
    scratch.delete(cid)
    return {cid: data}


def _store(stores: BlobStore | Sequence[str], identity: Identity) -> tuple[BlobStore, bool]:
    if isinstance(stores, BlobStore):
        return stores, False
    return HttpBlobStore(list(stores), identity), True


class Validators:
    """The validators a publisher talks to: one (PoW), or every PBFT validator. A task goes to each
    one that answers; its status is read from the first that answers (a dead one is skipped).
    ``validators``: their enrolled addresses, which must sign every reply (default: the seed's)."""

    def __init__(self, urls: str | Sequence[str], identity: Identity, config: RunConfig,
                 validators: Sequence[str] | None = None) -> None:
        self.urls = [urls] if isinstance(urls, str) else list(urls)
        if not self.urls:
            raise PublishError("no validator URL given")
        addresses = list(validators) if validators is not None else [v.address for v in
                                                                     derive_identities(config).validators]
        trusted = addresses[0] if len(self.urls) == 1 else None
        self.clients = [ValidatorClient(url, identity, trusted, trusted_all=addresses) for url in self.urls]

    def close(self) -> None:
        for client in self.clients:
            client.close()

    def __enter__(self) -> Validators:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def head(self) -> dict[str, Any]:
        return dict(self._first(lambda c: c.head()))

    def submit(self, tx: Transaction, data: Mapping[str, bytes] | None = None) -> None:
        if len(self.clients) == 1:
            self.clients[0].submit(tx, data)
        else:
            self._first(lambda c: c.submit(tx, data), every=True)

    def wait_sealed(self, task_id: str, timeout: float) -> dict[str, Any]:
        return dict(self._first(lambda c: c.wait_sealed(task_id, timeout)))

    def _first(self, call: Callable[[ValidatorClient], Any], every: bool = False) -> Any:
        """``call`` on the first client that answers (``every``: on each one; at least one must answer)."""
        result, errors = None, []
        for client in self.clients:
            try:
                result = call(client)
            except PublishError as exc:  # a dead validator, or (every) one still catching up that refuses
                if len(self.clients) == 1 or not (every or "unreachable" in str(exc)):
                    raise
                errors.append(str(exc))
                continue
            if not every:
                return result
        if len(errors) == len(self.clients):
            raise PublishError("; ".join(errors))
        return result


def publish_training(validator_url: str | Sequence[str], publisher_identity: Identity, config: RunConfig,
                     dataset: Dataset, rounds: int, *, on_round: RoundCallback | None = None,
                     timeout: float = DEFAULT_TASK_TIMEOUT_S,
                     validators: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """Publish ``rounds`` more training rounds (``Session.train``'s data order) and wait for each to be sealed.
    Each task travels with its data (:meth:`ValidatorClient.submit`): the validator stores it.

    Several URLs (PBFT validators): each task goes to every validator that answers, and is waited for at
    whichever answers; the primary runs it, the others seal it by consensus. ``validators``: their enrolled
    addresses (default: the ones the config's seed derives)."""
    scratch = MemoryStore()
    trusted = validators
    records = []
    with Validators(validator_url, publisher_identity, config, trusted) as validators:
        head = validators.head()
        start = int(head["train_tasks"])
        signer = Signer(publisher_identity, int(head["nonces"].get(publisher_identity.address, -1)) + 1)
        for round_index, indices in task_batches(dataset, config.batch_size, config.seed, start + rounds):
            if round_index < start:
                continue
            tx = publish_task(signer, scratch, round_index, dataset.x_train[indices], dataset.y_train[indices],
                              train=True)
            validators.submit(tx, carried(scratch, tx))
            record = validators.wait_sealed(str(tx.payload["task_id"]), timeout)
            records.append(record)
            if on_round is not None:
                on_round(record)
            stall = (record.get("quorum") or {}).get("stall")
            if stall:  # the validator's watch: tasks in a row without quorum (protocol/quorum_watch.py)
                raise QuorumStalled(stall)
    return records


def publish_inference(validator_url: str | Sequence[str], stores: BlobStore | Sequence[str],
                      publisher_identity: Identity, config: RunConfig, dataset: Dataset, *,
                      batch_size: int | None = None, limit: int | None = None, on_round: RoundCallback | None = None,
                      timeout: float = DEFAULT_TASK_TIMEOUT_S, validators: Sequence[str] | None = None) -> float:
    """Serve the test set (or its first ``limit`` samples) through the deployment; the framework's accuracy.
    Several URLs: as :func:`publish_training`."""
    scratch = MemoryStore()
    store, owned = _store(stores, publisher_identity)
    trusted = validators
    size = batch_size or config.batch_size
    total = dataset.num_test if limit is None else min(limit, dataset.num_test)
    correct = 0
    try:
        with Validators(validator_url, publisher_identity, config, trusted) as validators:
            head = validators.head()
            round_index = int(head["task_count"])
            signer = Signer(publisher_identity, int(head["nonces"].get(publisher_identity.address, -1)) + 1)
            for begin in range(0, total, size):
                x = dataset.x_test[begin:min(begin + size, total)]
                y = dataset.y_test[begin:min(begin + size, total)]
                tx = publish_task(signer, scratch, round_index, x, None, train=False)
                validators.submit(tx, carried(scratch, tx))
                record = validators.wait_sealed(str(tx.payload["task_id"]), timeout)
                logits = decode_result(store.get(record["output_cid"]), int(x.shape[0]), dataset.num_classes)
                correct += int((logits.argmax(1) == y).sum())
                round_index += 1
                if on_round is not None:
                    on_round(record)
    finally:
        if owned:
            store.close()  # type: ignore[attr-defined]
    return correct / max(total, 1)


def _refusal(reply: httpx.Response) -> str:
    """A validator's refusal as ``reason: error`` (its whole one-line reason), else the start of the body."""
    try:
        body = reply.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("reason"), str) and isinstance(body.get("error"), str):
        return f"{body['reason']}: {body['error'][:1000]}"
    return reply.text[:300]


def _describe(record: dict[str, Any]) -> str:
    loss = "" if record.get("loss") is None else f", loss {record['loss']:.4f}"
    times = record.get("times") or {}
    timing = f", {times['round']:.3f} s" if "round" in times else ""
    withheld = sum(1 for m in record.get("misbehaviour", []) for r in m.get("records") or []
                   if r.get("reason") == "withheld")
    where = "done (no ledger)" if record.get("status") == "done" else f"sealed at height {record['height']}"
    return (f"{record['task_id']}: {where}{loss}, accepted {record['accepted']}, "
            f"rejected {record['rejected']}, misbehaviour records {len(record.get('misbehaviour', []))} "
            f"({withheld} withheld){timing}")


@click.command("publish", help="Publish training rounds (or serve the test set) to a deployed validator.")
@click.option("--cluster-dir", type=click.Path(path_type=Path), default=None,
              help="read the settings from DIR/cluster.json (explicit flags override)")
@click.option("--validator", default=None, help="the validator's URL (PBFT: every validator's, comma-separated)")
@click.option("--stores", default=None, help="comma-separated storage node URLs")
@click.option("--ipfs-api", default=None, metavar="URL",
              help="instead of --stores: the IPFS node (kubo HTTP RPC) holding the objects")
@click.option("--key", "key_file", type=click.Path(path_type=Path), default=None, help="the publisher's identity file")
@click.option("--config", "config_file", type=click.Path(path_type=Path), default=None, help="RunConfig JSON")
@click.option("--enrolled", type=click.Path(path_type=Path), default=None,
              help="enrolment file: the key must be enrolled as the publisher [the keys the seed derives]")
@click.option("--rounds", type=click.IntRange(min=1), default=None, help="training rounds to add [default: config]")
@click.option("--infer", is_flag=True, help="serve the test set instead of training")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="with --infer: the first N test samples")
@click.option("--timeout", type=click.FloatRange(min=0.1), default=DEFAULT_TASK_TIMEOUT_S, show_default=True,
              help="seconds to wait for each task to be sealed")
def publish_command(cluster_dir: Path | None, validator: str | None, stores: str | None, ipfs_api: str | None,
                    key_file: Path | None, config_file: Path | None, enrolled: Path | None, rounds: int | None,
                    infer: bool, limit: int | None, timeout: float) -> None:
    if stores is not None and ipfs_api is not None:
        raise click.UsageError("give --stores or --ipfs-api, not both")
    if cluster_dir is not None:
        cluster = load_cluster(cluster_dir)
        validator = validator or ",".join(r.url for r in cluster.by_role("validator") if r.url)
        if stores is None and ipfs_api is None:
            stores, ipfs_api = (None, cluster.ipfs_api) if cluster.ipfs_api else (",".join(cluster.stores), None)
        key_file = key_file or cluster.path(cluster.publisher_key)
        config_file = config_file or cluster.path(cluster.config)
        enrolled = enrolled or cluster.path(cluster.enrolment)
    missing = [flag for flag, value in (("--validator", validator), ("--stores", stores or ipfs_api),
                                        ("--key", key_file), ("--config", config_file)) if value is None]
    if missing:
        raise click.UsageError(f"missing {', '.join(missing)} (or give --cluster-dir)")
    assert validator and key_file and config_file
    config = load_run_config(config_file)
    identity = load_identity(key_file)
    members = load_enrolment(enrolled) if enrolled is not None else None
    ids = run_identities(config, members, identity, ["publisher"])
    dataset = load_dataset(config.dataset, None if config.data_dir is None else Path(config.data_dir), config.seed,
                           config.limit_train, config.limit_test)
    objects: BlobStore | list[str] = ipfs_store(ipfs_api) if ipfs_api is not None else list(parse_urls(str(stores)))
    try:
        _publish(objects, list(parse_urls(validator, "--validator")), identity, config, dataset, rounds, infer, limit,
                 timeout, [v.address for v in ids.validators])
    finally:
        if isinstance(objects, BlobStore):
            objects.close()  # type: ignore[attr-defined]


def _publish(objects: BlobStore | list[str], urls: list[str], identity: Identity, config: RunConfig, dataset: Dataset,
             rounds: int | None, infer: bool, limit: int | None, timeout: float, validators: list[str]) -> None:
    def show(record: dict[str, Any]) -> None:
        click.echo(_describe(record))
        sys.stdout.flush()

    if infer:
        accuracy = publish_inference(urls, objects, identity, config, dataset, limit=limit, on_round=show,
                                     timeout=timeout, validators=validators)
        click.echo(f"inference accuracy {accuracy:.4f}")
    else:
        publish_training(urls, identity, config, dataset, rounds or config.rounds, on_round=show,
                         timeout=timeout, validators=validators)
    with Validators(urls, identity, config, validators) as reached:
        head = reached.head()
    click.echo(f"head {head['head_hash']} at height {head['height']}")


def main(argv: list[str] | None = None) -> None:
    run_command(publish_command, argv, "bmoe publish")

