"""Ledger backend settings: where an Ethereum-sealed ledger's node answers and which key seals.

Execution settings: the genesis names the chain id, the contract and the account. Shown by the ledger option
group (``--ledger``, ``--rpc-url``, ``--eth-key``), which falls back on what a run directory recorded.
"""

from __future__ import annotations

from bmoe.run.settings.setting import Setting

LEDGER = (
    Setting("rpc_url", "str", None, "only consensus ethereum has a node", nullable=True,
            label="Ethereum JSON-RPC URL", recorded=False),
    Setting("eth_key", "str", None, "the sealing account derived from the seed", nullable=True,
            label="Ethereum key file", recorded=False),
)
