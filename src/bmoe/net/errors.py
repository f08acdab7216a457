"""Exceptions of the network layer (``bmoe.net``).

Owns the errors that only exist because bytes travel between processes: a remote store that
cannot be reached or refuses, a reply whose signature does not check out, a bad enrolment file.
Storage failures that a local backend also has (missing, corrupt, malformed CID) keep their
``bmoe.storage.errors`` types, so callers handle every ``BlobStore`` the same way.
"""

from __future__ import annotations

from collections.abc import Mapping

from bmoe.storage.errors import StorageError


class NetError(Exception):
    """Base class of the errors that are specific to ``bmoe.net``."""


class EnrolmentError(NetError, ValueError):
    """An enrolment file is unreadable or malformed (one-line reason)."""


class UnauthenticResponse(NetError):
    """A reply is not signed by a key the client trusts for that server."""


class RemoteStoreError(StorageError):
    """Storage nodes could not serve a request; ``failures`` maps each node URL to what went wrong."""

    def __init__(self, summary: str, failures: Mapping[str, str]) -> None:
        self.summary = summary
        self.failures = dict(failures)
        detail = "; ".join(f"{url}: {why}" for url, why in self.failures.items()) or "no storage nodes"
        super().__init__(f"{summary} ({detail})")


class DeleteRefused(StorageError, PermissionError):
    """A storage node refuses deletions (nodes keep objects unless started with ``--allow-delete``)."""

    def __init__(self, cid: str, url: str) -> None:
        self.cid = cid
        self.url = url
        super().__init__(f"storage node {url} refuses to delete {cid} (deletion is disabled on that node)")
