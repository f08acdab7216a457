"""Reaching an Ethereum node: the RPC URL answers JSON-RPC, on the chain the caller expects.

Owns opening a :class:`~web3.Web3` over HTTP and the first two checks every client makes, each failure
one line: the URL does not answer (:class:`NodeUnreachable`), or it serves another chain id
(:class:`WrongChain`, so a run never seals on a chain it was not configured for).
"""

from __future__ import annotations

import requests
from web3 import Web3
from web3.exceptions import Web3Exception

from bmoe.credentials import without_credentials
from bmoe.ethereum.errors import NodeUnreachable, WrongChain
from bmoe.recursion import restore_recursion_limit

restore_recursion_limit()  # eth-account raised it at import: see bmoe/recursion.py

RPC_TIMEOUT_SECONDS = 30.0


def open_node(rpc_url: str, chain_id: int) -> Web3:
    """A web3 over ``rpc_url``, checked to answer and to serve ``chain_id``."""
    web3, served = _answering(rpc_url)
    if served != chain_id:
        where = without_credentials(rpc_url)
        raise WrongChain(f"the Ethereum node at {where} serves chain id {served}, not {chain_id}")
    return web3


def _first_line(err: BaseException) -> str:
    text = str(err).strip() or type(err).__name__
    reason = text.splitlines()[0]
    if "Connection refused" in text or "Errno 111" in text:
        return "connection refused"
    return reason if len(reason) <= 160 else reason[:157] + "..."


def chain_id_of(rpc_url: str) -> int:
    """The chain id the node at ``rpc_url`` serves (where a new run deploys its contract)."""
    return _answering(rpc_url)[1]


def _answering(rpc_url: str) -> tuple[Web3, int]:
    shown = without_credentials(rpc_url)  # what messages name: the credentials stay out of them
    if not rpc_url.startswith(("http://", "https://")):
        raise NodeUnreachable(f"Ethereum RPC URL {shown!r} is not an http:// or https:// URL")
    web3 = Web3(Web3.HTTPProvider(rpc_url, request_kwargs={"timeout": RPC_TIMEOUT_SECONDS},
                                  exception_retry_configuration=None))
    try:
        return web3, int(web3.eth.chain_id)
    except (requests.RequestException, Web3Exception, OSError, ValueError) as err:
        raise NodeUnreachable(f"cannot reach an Ethereum node at {shown}: {_first_line(err)}") from None
