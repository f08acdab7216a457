"""Verified generation: decoding on a fast path, every chunk of expert calls re-computed by replicas, lies located
to (edge, layer, expert, token) and rolled back, one ledger transaction per chunk (``docs/serving.md``)."""
