"""Store settings: where a run directory's objects live (the same bytes have the same CID in every store).

Execution settings, read by the command line (experiments/runs.run_store), not by Session, which takes the
store it is given. Shown by the store option group (``--store``, ``--ipfs-api``), which falls back on what a
run directory recorded.
"""

from __future__ import annotations

from bmoe.run.settings.setting import Setting

STORES = ("directory", "ipfs")

STORE = (
    Setting("store", "str", "directory", "the run directory's own store/", choices=STORES, recorded=False),
    Setting("ipfs_api", "str", None, "kubo's http://127.0.0.1:5001", nullable=True, label="IPFS HTTP RPC URL",
            recorded=False),
)
