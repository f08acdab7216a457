"""Reading files a user names: regular files only, never blocking, never unbounded.

Owns one rule for every path bmoe reads on a user's word (``bmoe cid FILE``, key files, enrolment
files, ``cluster.json``): the path is checked with ``os.stat`` before it is opened, so a FIFO (whose
opening blocks until a writer comes), a device (``/dev/zero`` never ends) or a directory is refused
with :class:`NotReadable`; it is then opened with ``O_NONBLOCK`` and checked again on the open
descriptor (the path may have been swapped in between), and read at most ``limit`` bytes.

:class:`NotReadable` is an :class:`OSError`, so callers that already report unreadable files in one
line keep doing so; its text names the problem and not the path (callers name the path).
"""

from __future__ import annotations

import os
import stat
from typing import BinaryIO

# what a user-named file is, when it is not a regular file (stat.S_IF* test -> words)
_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))

SMALL_FILE_LIMIT = 1 << 20
"""Bytes a key, enrolment, config or cluster file may have (1 MiB: each is a few KiB at most)."""


class NotReadable(OSError):
    """A path that is not a regular file, or a file over the size limit."""

    def __str__(self) -> str:
        return str(self.args[0])


def _refuse_irregular(mode: int) -> None:
    if stat.S_ISREG(mode):
        return
    kind = next((words for test, words in _KINDS if test(mode)), "not a regular file")
    raise NotReadable(f"{kind}, not a regular file")


def _refuse_large(size: int, limit: int | None) -> None:
    if limit is not None and size > limit:
        raise NotReadable(f"larger than {limit} bytes ({size} bytes)")


def open_regular_file(path: str | os.PathLike[str], limit: int | None = None) -> BinaryIO:
    """Open ``path`` for reading in binary if it is a regular file of at most ``limit`` bytes.

    Raises :class:`NotReadable` otherwise, or the ``OSError`` of ``stat``/``open`` (missing file,
    no permission), before a byte is read."""
    _refuse_irregular(os.stat(path).st_mode)
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        status = os.fstat(fd)
        _refuse_irregular(status.st_mode)
        _refuse_large(status.st_size, limit)
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_regular_file(path: str | os.PathLike[str], limit: int = SMALL_FILE_LIMIT) -> bytes:
    """The bytes of the regular file ``path``, at most ``limit`` of them (:class:`NotReadable` otherwise).

    The limit holds even for a file that grows while it is read, or whose size ``stat`` misreports."""
    with open_regular_file(path, limit) as handle:
        data = handle.read(limit + 1)
    _refuse_large(len(data), limit)
    return data


def read_regular_text(path: str | os.PathLike[str], limit: int = SMALL_FILE_LIMIT) -> str:
    """:func:`read_regular_file` decoded as UTF-8 (``UnicodeDecodeError`` if it is not)."""
    return read_regular_file(path, limit).decode("utf-8")

