"""How long proof of work takes here: the hash rate of :func:`bmoe.ledger.pow.mine`'s loop, measured, and the
expected time a block of a difficulty takes (``2**difficulty`` hashes on average).

Owns the estimate a command shows before it mines at a costly difficulty, so a long run is never a silent
one. Must not know: blocks, chains or the command line.
"""

from __future__ import annotations

import hashlib
import time

SHOW_FROM_SECONDS = 1.0  # an expected block time below this is not worth a line


def hash_rate(sample_seconds: float = 0.05) -> float:
    """Hashes per second of the nonce search's loop (a copied SHA-256 state, a nonce, the header's tail)."""
    base = hashlib.sha256(b"\0" * 256)
    tail = b"\0" * 128
    count = 0
    started = time.perf_counter()
    while (elapsed := time.perf_counter() - started) < sample_seconds:
        for nonce in range(count, count + 1000):
            h = base.copy()
            h.update(b"%d%b" % (nonce, tail))
            h.digest()
        count += 1000
    return count / elapsed


def mining_estimate(difficulty: int, rate: float) -> str | None:
    """One line on what a block costs at ``difficulty`` and ``rate`` hashes/s, or None when it is quick."""
    hashes = 2.0 ** difficulty
    seconds = hashes / rate
    if seconds < SHOW_FROM_SECONDS:
        return None
    shown = f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} min"
    return (f"PoW difficulty {difficulty}: a block needs about {hashes / 1e6:.3g} M hashes, about {shown} per block "
            f"at the {rate / 1e6:.2g} M hashes/s measured here (each bit doubles it)")
