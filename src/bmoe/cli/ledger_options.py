"""``--ledger``, ``--rpc-url`` and ``--eth-key`` of ``bmoe train`` and ``bmoe infer``: where blocks are sealed.

Owns the three options and the settings they give. ``--ledger bmoe`` (the default) keeps bmoe's own chain,
sealed by ``--consensus``; ``--ledger ethereum`` seals every block through the run's contract on the
Ethereum node at ``--rpc-url`` (consensus ``ethereum``: the genesis names the chain id and the contract),
from the account in ``--eth-key`` or one derived from the seed. The URL and key file are execution settings
(recorded in ``config.json``, outside the config's hash): the flags, else (the URL) ``BMOE_RPC_URL``, else what
the run directory recorded. A URL's ``user:password@`` is never recorded (:mod:`bmoe.credentials`): give it
with the flag or ``BMOE_RPC_URL`` each time.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from bmoe.credentials import rpc_url_from_environment
from bmoe.run.run_dir import RunDirError, recorded_settings

LEDGERS = ("bmoe", "ethereum")


def ledger_options(command: Callable[..., None]) -> Callable[..., None]:
    """Add ``--ledger``, ``--rpc-url`` and ``--eth-key`` to ``command``."""
    command = click.option("--eth-key", default=None, metavar="FILE",
                           help="--ledger ethereum: the sealing account's private key (hex) [the run's, else derived "
                                "from the seed]")(command)
    command = click.option("--rpc-url", default=None, metavar="URL",
                           help="--ledger ethereum: the Ethereum node's JSON-RPC URL, user:password@ never "
                                "recorded [$BMOE_RPC_URL, else the run's]")(command)
    return click.option("--ledger", type=click.Choice(LEDGERS), default=None,
                        help="bmoe (its own chain, sealed by --consensus) or ethereum (a contract on --rpc-url) "
                             "[the run's, else bmoe]")(command)


def ledger_settings(run_dir: Path | None, ledger: str | None, consensus: str | None, rpc_url: str | None,
                    eth_key: str | None) -> dict[str, Any]:
    """The ``consensus`` / ``rpc_url`` / ``eth_key`` settings: the flags, else the run's recorded ones."""
    recorded = recorded_settings(run_dir) if run_dir is not None else None
    recorded_ledger = None if recorded is None else ("ethereum" if recorded.consensus == "ethereum" else "bmoe")
    kind = ledger or recorded_ledger or "bmoe"
    if recorded_ledger is not None and kind != recorded_ledger:
        raise RunDirError(f"{run_dir} keeps its chain on ledger {recorded_ledger}: give --ledger {recorded_ledger}, "
                          "or use a new --run-dir")
    if kind != "ethereum":
        if consensus == "ethereum":
            raise RunDirError("blocks sealed on Ethereum: give --ledger ethereum --rpc-url URL")
        if rpc_url is not None or eth_key is not None:
            raise RunDirError("--rpc-url and --eth-key need --ledger ethereum")
        return {} if consensus is None else {"consensus": consensus}
    if consensus not in (None, "pow", "ethereum"):
        raise RunDirError(f"--ledger ethereum seals every block through its contract: drop --consensus {consensus}")
    rpc_url = rpc_url if rpc_url is not None else rpc_url_from_environment()
    return {"consensus": "ethereum",
            "rpc_url": rpc_url if rpc_url is not None else (recorded.rpc_url if recorded is not None else None),
            "eth_key": eth_key if eth_key is not None else (recorded.eth_key if recorded is not None else None)}
