"""The SHA-256 hex digest: how every layer names a run of bytes (result digests, payload hashes, request
bodies). One definition, at the bottom of the layers, so the ledger, consensus, the comparison rules and
the network all compute the same string.

Must not know what the bytes are.
"""

from __future__ import annotations

import hashlib


def sha256_hex(data: bytes) -> str:
    """Lower-case hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()
