"""The audited index the explorer serves, rebuilt when the chain changes.

Owns one rule: nothing is shown that the audit has not passed. Each build audits the source
(``bmoe audit``'s checks: hashes, signatures, seals, state roots, every object against its CID), then
replays the same blocks into a :class:`~bmoe.explorer.index.ChainIndex`; a chain that fails is
served as the audit's finding instead of its data. Builds happen on the first request after a
watched file changed (a block sealed), one at a time; requests in between share the last build.
"""

from __future__ import annotations

import itertools
import threading
from dataclasses import dataclass

from bmoe.ethereum.errors import EthereumError
from bmoe.explorer.index import ChainIndex, build_index
from bmoe.explorer.source import Source, fingerprint
from bmoe.ledger.audit import AuditReport
from bmoe.ledger.blocks import block_from_bytes
from bmoe.ledger.errors import LedgerError
from bmoe.ledger.snapshot import chain_snapshot
from bmoe.net.errors import NetError
from bmoe.run.config import ConfigError
from bmoe.storage import StorageError

AUDIT_ERRORS = (LedgerError, StorageError, ConfigError, NetError, EthereumError)
ATTEMPTS = 3  # a chain that grows between the audit's copy and the replay's is read again


@dataclass(frozen=True)
class Served:
    """One build: the index and the audit report, or the audit's finding (then no index)."""

    stamp: tuple[tuple[int, int], ...]
    index: ChainIndex | None
    report: AuditReport | None
    finding: str | None


def _replay(source: Source) -> Served:
    stamp = fingerprint(source)
    try:
        report, chain_path = source.audit()
        with chain_snapshot(chain_path) as chain:
            rows = itertools.takewhile(lambda row: row[0] <= report.height, chain.iter_raw())
            index = build_index((block_from_bytes(bytes(data)), digest, len(data)) for _, digest, data in rows)
    except AUDIT_ERRORS as err:
        return Served(stamp, None, None, str(err))
    if [block.hash for block in index.blocks] != report.block_hashes:
        return Served(stamp, None, report, None)  # rewritten between the two reads: the caller reads again
    return Served(stamp, index, report, None)


class Explorer:
    """The source and its latest audited build."""

    def __init__(self, source: Source) -> None:
        self.source = source
        self._lock = threading.Lock()
        self._served: Served | None = None

    def current(self) -> Served:
        """The build for the chain as it is now (rebuilt first when a watched file changed)."""
        with self._lock:
            if self._served is None or self._served.stamp != fingerprint(self.source):
                for _ in range(ATTEMPTS):
                    self._served = _replay(self.source)
                    if self._served.index is not None or self._served.finding is not None:
                        break
                else:
                    self._served = Served(self._served.stamp, None, None,
                                          "the chain kept changing while it was read; reload the page")
            return self._served
