"""What both kinds of validator process share at start-up: their settings, their object stores, serving.

Owns :class:`ValidatorArgs` (the settings ``--cluster-dir`` and the flags give), :func:`object_stores` (the storage
nodes' or the IPFS node's clients, checked now) and :func:`serve_validator` (bind the edges to the session's
ledger, serve, close the stores). The classifier's validator (:mod:`bmoe.net.validator.command`) and a language
model's (:mod:`bmoe.net.validator.lm_command`) both start through them.
"""

from __future__ import annotations

import socket
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import click

from bmoe.ledger.keys import Identity
from bmoe.net.http.serve import serve
from bmoe.net.node_setup import ipfs_store, parse_urls, trusted_stores
from bmoe.net.store.client import HttpBlobStore
from bmoe.net.validator.network_edges import NetworkEdges
from bmoe.net.validator.service import ValidatorService
from bmoe.storage import BlobStore
from bmoe.storage.write_behind import WriteBehindStore

DEFAULT_EDGE_TIMEOUT_S = 30.0


@dataclass
class ValidatorArgs:
    config: Path | None = None
    key: Path | None = None
    enrolled: Path | None = None
    stores: str | None = None
    ipfs_api: str | None = None
    host: str = "127.0.0.1"
    port: int | None = None
    run_dir: Path | None = None
    edge_timeout: float | None = None
    input_shape: str | None = None
    classes: int | None = None
    lm: Path | None = None  # a language model's settings (lm.json) and tokenizer: an LM deployment
    tokenizer: Path | None = None


def serve_validator(service: ValidatorService, sock: socket.socket, edges: NetworkEdges, line: Callable[[], str],
           stores: list[BlobStore]) -> None:
    """Hand the edges the session's ledger, serve until stopped (announcing ``line()`` once listening), then
    close the store clients."""
    node = service.session.node
    edges.bind(node.pending_view)
    edges.resync(node.view())

    def announce() -> None:
        click.echo(line())
        sys.stdout.flush()

    try:
        serve(service.app(), sock, on_listening=announce)
    finally:
        for store in stores:
            store.close()


def object_stores(args: ValidatorArgs, identity: Identity, members: Mapping[str, str]) -> Callable[[], BlobStore]:
    """A maker of the validator's store clients: on the storage nodes (their keys checked now, against the
    enrolment), or on the IPFS node (checked to answer now)."""
    if args.ipfs_api is not None:
        ipfs_store(args.ipfs_api).close()
        return lambda: ipfs_store(str(args.ipfs_api))
    assert args.stores is not None
    store_urls = parse_urls(args.stores)
    addresses = trusted_stores(store_urls, identity, members)
    return lambda: HttpBlobStore(store_urls, identity, node_addresses=addresses)


def write_behind_store(stores_at: Callable[[], BlobStore]) -> WriteBehindStore:
    """The store a validator's rounds use: objects usable at once, written behind the round (on storage nodes, a
    batch to every node responsible for them, durable when its request returns), every one durable before a block
    naming it is sealed."""
    backing = stores_at()
    return WriteBehindStore(backing, durable_batches=isinstance(backing, HttpBlobStore))
