"""Sanity limits on the sizes settings may ask for, so a typo cannot hang a run or exhaust memory.

The paper runs N = M = 10, K = 3, 256 hidden units, batches of 1000, 1500 rounds; the limits leave two orders
of magnitude of room (the memory a run needs on its dataset is estimated separately, in ``run/fit.py``).
"""

from __future__ import annotations

MAX_PARTIES = 1024  # N experts, M edges: each edge holds a key and computes every activated expert
MAX_VALIDATORS = 100  # PBFT exchanges n^2 messages per block
MAX_HIDDEN = 65_536
MAX_BATCH = 1_000_000
MAX_ROUNDS = 10_000_000
MAX_SAMPLES = 1_000_000_000  # limit_train / limit_test
MAX_THREADS = 1024
MAX_STEP = 1000.0  # lr and balance: beyond this SGD only produces inf/NaN
MAX_DELAY_S = 60.0  # PBFT's simulated one-way delay; its timers are multiples of it
MAX_RUN_DIFFICULTY = 24  # 2^24 = 16.7 M hashes a block: 10-45 s in Python; 32 would be hours per block
MAX_SEED = 2**63 - 1  # keys encode the seed as a signed 64-bit integer (ledger.keys.derive_identity)
