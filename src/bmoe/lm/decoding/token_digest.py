"""The digest of a list of token ids, as receipts record a prompt and a completion.

Must not know: what the tokens are.
"""

from __future__ import annotations

import hashlib

import numpy as np


def tokens_sha256(tokens: list[int]) -> str:
    """SHA-256 (hex) of token ids as 32-bit little-endian unsigned integers."""
    return hashlib.sha256(np.asarray(tokens, dtype="<u4").tobytes()).hexdigest()
