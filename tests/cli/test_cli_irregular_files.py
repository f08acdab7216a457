"""A FIFO, an endless device or a directory where bmoe expects a file: one line, exit 2, at once.

Opening a FIFO for reading blocks until a writer comes, and ``/dev/zero`` never ends, so each
command runs in a subprocess with a timeout (a regression fails instead of hanging). The readers
themselves are checked in process too, with a watchdog that unblocks a FIFO opened by mistake.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bmoe.fileio import NotReadable, read_regular_file
from bmoe.ledger.errors import LedgerError
from bmoe.ledger.keys import derive_identity, load_identity, save_identity
from bmoe.net.enrolment import load_enrolment, save_enrolment
from bmoe.net.errors import EnrolmentError
from bmoe.net.node_setup import SetupError
from bmoe.storage import cid_of
from tests.cli.helpers import assert_user_error, bmoe

PROMPTLY_S = 30.0  # a python start-up on 2 busy cores; a blocked read never returns at all

KINDS = ("fifo", "dev-zero", "directory")
WORDS = {"fifo": "FIFO", "dev-zero": "character device", "directory": "directory"}


def irregular(where: Path, kind: str) -> Path:
    """A path of ``kind`` at ``where``: a FIFO, a link to /dev/zero, or a directory."""
    if kind == "fifo":
        os.mkfifo(where)
    elif kind == "dev-zero":
        where.symlink_to("/dev/zero")
    else:
        where.mkdir()
    return where


@contextlib.contextmanager
def fifo_watchdog(path: Path, after_s: float = 5.0) -> Iterator[None]:
    """If a reader blocks opening the FIFO ``path``, open it for writing after ``after_s`` s (and so unblock it)."""
    done = threading.Event()

    def rescue() -> None:
        if not done.wait(after_s) and path.is_fifo():
            with contextlib.suppress(OSError):
                os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))

    thread = threading.Thread(target=rescue, daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()


@pytest.mark.parametrize("kind", KINDS)
def test_cid_of_a_fifo_a_device_or_a_directory_is_refused_in_one_line(tmp_path: Path, kind: str) -> None:
    path = irregular(tmp_path / "input", kind)
    started = time.monotonic()
    assert_user_error(bmoe("cid", path, timeout=PROMPTLY_S), str(path), WORDS[kind], "not a regular file")
    assert time.monotonic() - started < PROMPTLY_S


def test_cid_of_a_file_over_many_chunks_is_the_cid_of_its_bytes(tmp_path: Path) -> None:
    data = os.urandom(3 * 262144 + 5)
    (tmp_path / "big.bin").write_bytes(data)
    result = bmoe("cid", tmp_path / "big.bin", timeout=PROMPTLY_S)
    assert result.returncode == 0 and result.stdout.strip() == cid_of(data), result.stderr


def files_for_a_store(root: Path) -> dict[str, Path]:
    save_identity(root / "store.key", derive_identity(1, "store"))
    save_enrolment(root / "enrolled.json", {"store": derive_identity(1, "store").address})
    return {"key": root / "store.key", "enrolled": root / "enrolled.json", "data": root / "data"}


def test_a_store_given_a_fifo_for_its_key_file_refuses_it_in_one_line(tmp_path: Path) -> None:
    files = files_for_a_store(tmp_path)
    fifo = irregular(tmp_path / "pipe", "fifo")
    result = bmoe("store", "--port", "0", "--key", fifo, "--enrolled", files["enrolled"], "--data-dir", files["data"],
                  timeout=PROMPTLY_S)
    assert_user_error(result, str(fifo), "FIFO")
    assert not files["data"].exists()


def test_cluster_status_refuses_a_cluster_file_that_is_a_fifo(tmp_path: Path) -> None:
    irregular(tmp_path / "cluster.json", "fifo")
    result = subprocess.run([sys.executable, "-m", "bmoe", "cluster", "status", "--dir", str(tmp_path)],
                            capture_output=True, text=True, timeout=PROMPTLY_S, stdin=subprocess.DEVNULL)
    assert_user_error(result, "cluster.json", "FIFO")


def load_cluster_file(path: Path) -> object:
    from bmoe.net.cluster_file import load_cluster

    assert path.name == "cluster.json"
    return load_cluster(path.parent)


READERS: dict[str, tuple[Callable[[Path], object], type[Exception], str]] = {
    "identity file": (load_identity, LedgerError, "identity.key"),
    "enrolment file": (load_enrolment, EnrolmentError, "enrolled.json"),
    "cluster file": (load_cluster_file, SetupError, "cluster.json"),
    "any small file": (read_regular_file, NotReadable, "file"),
}


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("reader", list(READERS))
def test_every_reader_of_user_files_refuses_fifos_devices_and_directories(tmp_path: Path, reader: str,
                                                                          kind: str) -> None:
    load, error, name = READERS[reader]
    path = irregular(tmp_path / name, kind)
    started = time.monotonic()
    with fifo_watchdog(path), pytest.raises(error, match=WORDS[kind]) as info:
        load(path)
    assert time.monotonic() - started < 4.0, "blocked until the watchdog opened the FIFO"
    assert "\n" not in str(info.value)


def test_a_small_file_over_its_limit_is_refused_without_reading_it_all(tmp_path: Path) -> None:
    (tmp_path / "big").write_bytes(b"x" * 1001)
    (tmp_path / "fits").write_bytes(b"x" * 1000)
    with pytest.raises(NotReadable, match="larger than 1000 bytes"):
        read_regular_file(tmp_path / "big", limit=1000)
    assert read_regular_file(tmp_path / "fits", limit=1000) == b"x" * 1000
