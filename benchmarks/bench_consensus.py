"""Time per sealed block of both consensus engines in the deterministic simulator (simulated
seconds, so the numbers do not depend on this machine): PBFT against n and message delay, PoW against
difficulty and number of miners. Prints the table and draws docs/consensus_latency.png.

    python benchmarks/bench_consensus.py [--plot docs/consensus_latency.png]
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from bmoe.experiments.pow_network.latency import latency_table


def plot(rows: list[dict[str, Any]], path: Path) -> None:
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    pbft = [r for r in rows if r["engine"] == "pbft"]
    pow_rows = [r for r in rows if r["engine"] == "pow"]
    for delay in sorted({r["delay"] for r in pbft}):
        sel = [r for r in pbft if r["delay"] == delay]
        left.plot([r["n"] for r in sel], [r["s_per_block"] for r in sel], marker="o", label=f"delay {delay * 1e3:g} ms")
    left.set_xlabel("validators n")
    left.set_ylabel("simulated seconds per sealed block")
    left.set_title("PBFT")
    left.legend()
    for miners in sorted({r["miners"] for r in pow_rows}):
        sel = [r for r in pow_rows if r["miners"] == miners]
        right.plot([r["difficulty"] for r in sel], [r["s_per_block"] for r in sel], marker="s",
                   label=f"{miners} miners")
    fewest = min(r["miners"] for r in pow_rows)
    sel = [r for r in pow_rows if r["miners"] == fewest]
    right.plot([r["difficulty"] for r in sel], [r["expected_s_per_block"] for r in sel], "k:", label="2^d / hash rate")
    right.set_xlabel("difficulty (leading zero bits)")
    right.set_yscale("log")
    right.set_title("PoW (2048 hashes/s in all)")
    right.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plot", type=Path, default=Path("docs/consensus_latency.png"))
    args = parser.parse_args()
    rows = latency_table(seed=0)
    plot(rows, args.plot)
    keys = list(rows[0])
    for key in rows[1:]:
        keys.extend(k for k in key if k not in keys)
    print(" | ".join(keys))
    for row in rows:
        print(" | ".join(f"{row.get(k):.4g}" if isinstance(row.get(k), float) else str(row.get(k, "")) for k in keys))


if __name__ == "__main__":
    main()
