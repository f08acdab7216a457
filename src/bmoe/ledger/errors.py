"""Named ledger errors.

Owns the exception hierarchy of :mod:`bmoe.ledger`.  Every rule in the ledger is a
guard clause that raises one of these; each has a one-line, human-readable ``str()``
and keeps its structured parts as attributes (and in ``args``, so they pickle).
"""

from __future__ import annotations

_SHORT = 16


def short_hash(value: str | None) -> str:
    """First 16 hex chars of a digest followed by an ellipsis, for messages."""
    if value is None:
        return "?"
    return value if len(value) <= _SHORT else value[:_SHORT] + "…"


class LedgerError(Exception):
    """Base class of every error raised by the ledger."""


class InvalidTransaction(LedgerError):
    """A transaction is malformed or its signature does not verify."""

    def __init__(self, tx_hash: str | None, reason: str) -> None:
        super().__init__(tx_hash, reason)
        self.tx_hash = tx_hash
        self.reason = reason

    def __str__(self) -> str:
        if self.tx_hash is None:
            return f"invalid transaction: {self.reason}"
        return f"invalid transaction {short_hash(self.tx_hash)}: {self.reason}"


class InvalidBlock(LedgerError):
    """A block is malformed, or does not extend the chain it is appended to."""

    def __init__(self, height: int | None, reason: str) -> None:
        super().__init__(height, reason)
        self.height = height
        self.reason = reason

    def __str__(self) -> str:
        if self.height is None:
            return f"invalid block: {self.reason}"
        return f"invalid block {self.height}: {self.reason}"


class ChainIntegrityError(LedgerError):
    """A stored chain fails verification; names the block (and transaction) at fault.

    ``str()`` looks like ``block 7: transaction 3 (ab12…): bad signature``.
    """

    def __init__(
        self,
        height: int | None,
        reason: str,
        tx_index: int | None = None,
        tx_hash: str | None = None,
    ) -> None:
        super().__init__(height, reason, tx_index, tx_hash)
        self.height = height
        self.reason = reason
        self.tx_index = tx_index
        self.tx_hash = tx_hash

    def __str__(self) -> str:
        where = "block ?" if self.height is None else f"block {self.height}"
        if self.tx_index is not None:
            where += f": transaction {self.tx_index}"
            if self.tx_hash is not None:
                where += f" ({short_hash(self.tx_hash)})"
        return f"{where}: {self.reason}"


class ChainStoreError(LedgerError):
    """The on-disk chain store cannot be opened, read or written."""
