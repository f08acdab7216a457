"""Exceptions of the storage layer.

Owns the error types every storage module raises, so callers can catch storage
failures without importing the backend that produced them.
"""

from __future__ import annotations


class StorageError(Exception):
    """Base class of every error raised by ``bmoe.storage``."""


class InvalidCID(StorageError, ValueError):
    """A text is not a CID this storage layer can address and verify."""

    def __init__(self, text: object, reason: str) -> None:
        self.text = text
        self.reason = reason
        super().__init__(f"invalid CID {text!r}: {reason}")


class ObjectNotFound(StorageError, LookupError):
    """No object with the given CID is stored."""

    def __init__(self, cid: str, where: str = "") -> None:
        self.cid = cid
        suffix = f" in {where}" if where else ""
        super().__init__(f"object {cid} not found{suffix}")


class CorruptObject(StorageError, ValueError):
    """Stored or received bytes do not match what they claim to be.

    ``cid`` names the object when the bytes were addressed by a CID; it is ``None``
    for bytes that were merely expected to be in a given format (e.g. safetensors).
    """

    def __init__(self, message: str, cid: str | None = None) -> None:
        self.cid = cid
        super().__init__(message)


class IpfsError(StorageError):
    """An IPFS node's HTTP RPC could not serve a request (unreachable, timed out, refused); the message
    names the node's URL and the problem in one line. A node that answers with wrong bytes raises
    :class:`CorruptObject` instead."""


class IpfsNodeError(IpfsError):
    """A local IPFS node could not be started or stopped (engine not installed, no answer by the deadline)."""


class InvalidCar(StorageError, ValueError):
    """A CAR file is malformed, holds a block that does not hash to its CID, or lacks a block its roots need."""
