"""What every deployed process does before it serves: read the run config, check its key, trust its peers.

Owns the start-up checks shared by ``bmoe validator``, ``bmoe edge`` and ``bmoe publish``:

* :func:`load_run_config` reads a ``RunConfig`` JSON file (the same format as a run directory's
  ``config.json``), one-line :class:`SetupError` if it is unreadable or invalid;
* :func:`run_identities` reads who takes part from the enrolment (the public keys the genesis enrols,
  :func:`~bmoe.run.setup.enrolled_identities`) and refuses a key that is not enrolled as the role
  the process plays (an edge given the validator's key, a key nobody enrolled); without an enrolment,
  every key is the one the run's seed derives (a reproducible simulation);
* :func:`trusted_stores` asks each storage node's ``/health`` who it is and keeps the answer only if
  the reply is signed by an enrolled key, giving the ``node_addresses`` an ``HttpBlobStore`` checks
  every later reply against;
* :func:`ipfs_store` opens the IPFS node a deployment under ``--store ipfs`` keeps its objects on;
* :func:`shape_only_dataset` is the ``Dataset`` a validator hands to ``Session``: the shapes and the
  classes, no samples (the validator decodes every task's ``x`` and ``y`` from the task blob).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from pathlib import Path

import httpx
import torch

from bmoe.data import DataError, Dataset
from bmoe.edge.behaviour import EdgeBehaviour, make_behaviour
from bmoe.ledger.keys import Identity
from bmoe.net.errors import NetError, UnauthenticResponse
from bmoe.net.http.auth import SignedAuth
from bmoe.net.store.placement import normalize_url
from bmoe.run.config import ConfigError, RunConfig
from bmoe.run.fit import check_fits, load_run_dataset
from bmoe.run.run_dir import read_config_file
from bmoe.run.settings import options as settings_options
from bmoe.run.setup import Identities, derive_identities, enrolled_identities
from bmoe.storage import BlobStore, StorageError


class SetupError(NetError, ValueError):
    """A deployed process cannot start: a bad file, a wrong key, an unreachable peer (one-line reason)."""


def load_run_config(path: Path) -> RunConfig:
    """The ``RunConfig`` stored as JSON at ``path`` (validated as a whole, as every run's settings are)."""
    try:
        return read_config_file(path)
    except ConfigError as exc:
        raise SetupError(str(exc)) from None


def run_identities(config: RunConfig, enrolled: Mapping[str, str] | None, identity: Identity,
                   roles: Collection[str]) -> Identities:
    """The run's participants, holding ``identity`` as one of ``roles`` (names such as ``edge-3``).

    ``enrolled``: the enrolment (name -> address) the genesis enrols; None: every key derives from the
    config's seed. A key enrolled as another participant, or not at all, is refused in one line."""
    if enrolled is None:
        known = {p.address: p.name for p in derive_identities(config).everyone()}
        where = "the keys the config's seed derives"
    else:
        known = {address: name for name, address in enrolled.items()}
        where = "the enrolment"
    name = known.get(identity.address)
    if name not in roles:
        wanted = " or ".join(sorted(roles)) if len(roles) < 4 else "a validator"
        got = f"{name}'s" if name is not None else "nobody's"
        hint = " (give --enrolled FILE where the keys are enrolled ones)" if enrolled is None else ""
        raise SetupError(f"the key given ({identity.address[:16]}...) is {got} in {where}, not {wanted}'s: "
                         f"each participant runs with its own key{hint}")
    if enrolled is None:
        return derive_identities(config)
    try:
        ids = enrolled_identities(config, enrolled, identity)
    except ConfigError as exc:
        raise SetupError(str(exc)) from None
    return ids


def parse_urls(text: str, what: str = "--stores") -> tuple[str, ...]:
    """Comma-separated URLs, normalised; at least one."""
    try:
        urls = tuple(dict.fromkeys(normalize_url(part.strip()) for part in text.split(",") if part.strip()))
    except ValueError as exc:
        raise SetupError(f"{what}: {exc}") from None
    if not urls:
        raise SetupError(f"{what}: give at least one URL")
    return urls


def trusted_stores(urls: Sequence[str], identity: Identity, enrolled: Mapping[str, str],
                   timeout: float = 5.0) -> dict[str, str]:
    """URL -> address of each storage node, from its signed ``/health`` reply (signed by an enrolled key)."""
    trusted: dict[str, str] = {}
    auth = SignedAuth(identity, trusted=set(enrolled.values()))
    with httpx.Client(auth=auth, timeout=timeout) as client:
        for url in urls:
            try:
                reply = client.get(f"{url}/health")
                address = reply.json().get("address") if reply.status_code == 200 else None
            except (httpx.HTTPError, UnauthenticResponse, ValueError, AttributeError) as exc:
                raise SetupError(f"storage node {url} did not answer as an enrolled node: {exc}") from None
            if address != reply.headers.get("x-bmoe-address"):
                raise SetupError(f"storage node {url} claims {address} but signs as another key")
            trusted[url] = str(address)
    return trusted


def ipfs_store(url: str) -> BlobStore:
    """An :class:`~bmoe.storage.ipfs.IpfsStore` on the IPFS node at ``url`` (every read verified against its
    CID), checked to answer: the store of a deployment under ``--store ipfs``, instead of storage nodes."""
    from bmoe.storage.ipfs import IpfsStore

    if not url.startswith(("http://", "https://")):
        raise SetupError(f"--ipfs-api must be an http:// or https:// URL, got {url!r}")
    store = IpfsStore(url.rstrip("/"))
    try:
        store.ping()
    except StorageError as exc:
        store.close()
        raise SetupError(str(exc)) from None
    return store


def parse_shape(text: str) -> tuple[int, ...]:
    """``"1,8,8"`` -> ``(1, 8, 8)``."""
    try:
        shape = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise SetupError(f"--input-shape must be positive integers separated by commas, got {text!r}") from None
    if not shape or any(d < 1 for d in shape):
        raise SetupError(f"--input-shape must be positive integers separated by commas, got {text!r}")
    return shape


def dataset_shape(config: RunConfig) -> tuple[tuple[int, ...], int]:
    """``(input shape, classes)`` of the config's dataset, loaded once (digits and synthetic are offline)."""
    try:
        data = load_run_dataset(config)
        check_fits(config, data)
    except (DataError, ConfigError) as exc:
        raise SetupError(str(exc)) from None
    return data.input_shape, data.num_classes


def shape_only_dataset(name: str, input_shape: Sequence[int], num_classes: int) -> Dataset:
    """A ``Dataset`` with empty splits: ``Session`` reads only its shapes and classes in a deployment."""
    if num_classes < 2:
        raise SetupError(f"--classes must be >= 2, got {num_classes}")
    empty_x = torch.empty((0, *input_shape), dtype=torch.float32)  # (0, C, H, W)
    empty_y = torch.empty((0,), dtype=torch.int64)
    return Dataset(name, empty_x, empty_y, empty_x.clone(), empty_y.clone(), num_classes)


def make_edge_behaviour(name: str, params: Mapping[str, float]) -> EdgeBehaviour:
    """A registered behaviour (honest or an attack) with its parameters, one-line error otherwise."""
    try:
        return make_behaviour(name, **dict(params))
    except (ValueError, TypeError) as exc:
        raise SetupError(str(exc)) from None


def parse_params(pairs: Sequence[str]) -> dict[str, float]:
    """``["probability=1", "noise_std=0.5"]`` -> ``{"probability": 1.0, "noise_std": 0.5}`` (run/settings/options)."""
    try:
        return settings_options.parse_params(pairs)
    except ConfigError as exc:
        raise SetupError(str(exc)) from None
