"""Credentials in a node's URL (``http://user:password@host:8545``): used, never stored.

Owns the one rule for the URLs of outside nodes (``--rpc-url``, ``--ipfs-api``): what a run directory or
an audit report keeps is the URL without its ``user:password@``; the credentials come from the flag or
the environment (``BMOE_RPC_URL``) each time a command runs.

Must not know: which command asks, or how the URL is used.
"""

from __future__ import annotations

import os
from urllib.parse import urlsplit, urlunsplit

RPC_URL_ENV = "BMOE_RPC_URL"  # the Ethereum node's URL, credentials included, when --rpc-url is not given


def without_credentials(url: str) -> str:
    """``url`` with any ``user:password@`` taken out of its authority; other URLs unchanged."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))


def rpc_url_from_environment() -> str | None:
    """The Ethereum node's URL from ``BMOE_RPC_URL``, or None where it is unset or empty."""
    return os.environ.get(RPC_URL_ENV) or None
