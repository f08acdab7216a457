"""Time per sealed block of both consensus engines in the deterministic simulator (simulated
seconds, so the numbers do not depend on this machine): PBFT against n and message delay, PoW against
difficulty and number of miners.

    python benchmarks/bench_consensus.py
"""

from __future__ import annotations

from bmoe.consensus.latency import latency_table


def main() -> None:
    rows = latency_table(seed=0)
    keys = list(rows[0])
    for key in rows[1:]:
        keys.extend(k for k in key if k not in keys)
    print(" | ".join(keys))
    for row in rows:
        print(" | ".join(f"{row.get(k):.4g}" if isinstance(row.get(k), float) else str(row.get(k, "")) for k in keys))


if __name__ == "__main__":
    main()
