"""In-process counters of a node: requests accepted, refusals per reason, blob traffic, replication.

Owns one thread-safe counter object that the request guard and the store service both write and
``GET /stats`` reads. Keys are ``group.name`` (``errors.unknown_key``, ``blobs.stored``); the
snapshot nests them as ``{"errors": {"unknown_key": 1}, "blobs": {"stored": 4}}``.
"""

from __future__ import annotations

import threading
from collections import Counter


class Counters:
    """Named integer counters, grouped by the part of the key before the first dot."""

    def __init__(self) -> None:
        self._counts: Counter[str] = Counter()
        self._lock = threading.Lock()

    def add(self, key: str, amount: int = 1) -> None:
        """Increase ``key`` (``group.name``) by ``amount``."""
        with self._lock:
            self._counts[key] += amount

    def get(self, key: str) -> int:
        """Current value of ``key`` (0 if never counted)."""
        with self._lock:
            return self._counts[key]

    def snapshot(self) -> dict[str, dict[str, int]]:
        """Every counter, nested by group and sorted by name."""
        with self._lock:
            items = sorted(self._counts.items())
        out: dict[str, dict[str, int]] = {}
        for key, value in items:
            group, _, name = key.partition(".")
            out.setdefault(group, {})[name or group] = value
        return out
