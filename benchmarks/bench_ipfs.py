"""Put/get throughput of an IPFS node (js-ipfs over the kubo HTTP RPC, ``IpfsStore``) against ``DirectoryStore``.

Objects of three sizes (a digits expert ~80 KB, a Fashion-MNIST expert ~0.8 MB, a 16 MiB blob) are put,
then read back (every read verified against its CID, as always), in each store in turn, in one run; the
ratios are printed. ``IpfsStore``'s cache of verified objects is off, so every get reads the node. The
node is started offline on loopback by ``bmoe.storage.ipfs_node`` with its repository under ``--dir``,
beside the directory stores, so all three write to the same disk.

    python benchmarks/bench_ipfs.py [--mib 64] [--dir /path/on/the/disk/to/measure]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from bmoe.storage import BlobStore, DirectoryStore
from bmoe.storage.ipfs import IpfsStore
from bmoe.storage.ipfs_node import start_node

SIZES = {"80 KB": 80_000, "0.8 MB": 800_000, "16 MiB": 16 << 20}


def _throughput(store: BlobStore, blobs: list[bytes]) -> tuple[float, float]:
    """(put MB/s, get MB/s) over ``blobs``."""
    total = sum(map(len, blobs)) / 1e6
    started = time.perf_counter()
    cids = [store.put(blob) for blob in blobs]
    put = time.perf_counter() - started
    started = time.perf_counter()
    for cid, blob in zip(cids, blobs, strict=True):
        assert store.get(cid) == blob
    get = time.perf_counter() - started
    return total / put, total / get


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=64, help="MiB of objects per size and store")
    parser.add_argument("--dir", type=Path, default=None, help="where the stores and the node's repository live")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as root, start_node(Path(root) / "ipfs") as node, \
            IpfsStore(node.api_url, timeout=120, cache_bytes=0) as ipfs:  # every get asks the node
        stores: dict[str, BlobStore] = {
            "IpfsStore (js-ipfs 0.66.1)": ipfs,
            "DirectoryStore, fsync per object": DirectoryStore(Path(root) / "durable"),
            "DirectoryStore, batch (a run's store)": DirectoryStore(Path(root) / "batch", batch=True),
        }
        print(f"{'objects':>8} {'store':<46} {'put MB/s':>9} {'get MB/s':>9}")
        for label, size in SIZES.items():
            count = max(2, (args.mib << 20) // size)
            rates = {}
            for name, store in stores.items():
                blobs = [os.urandom(size) for _ in range(count)]  # fresh bytes: nothing is already stored
                rates[name] = _throughput(store, blobs)
                print(f"{label:>8} {name:<46} {rates[name][0]:9.1f} {rates[name][1]:9.1f}")
            ipfs_rate = rates["IpfsStore (js-ipfs 0.66.1)"]
            for name in list(stores)[1:]:
                print(f"{'':>8} {name + ' / IPFS':<46} {rates[name][0] / ipfs_rate[0]:8.1f}x "
                      f"{rates[name][1] / ipfs_rate[1]:8.1f}x")


if __name__ == "__main__":
    main()
