"""A PBFT validator's founding block when it cannot sign it: fetched from validator-0.

Owns one step of a PBFT deployment whose keys are their owners' (``bmoe cluster up`` without
``--seeded-keys``). Block 0 is validator-0's alone (``run/setup.write_genesis``); under
seed-derived keys every validator derives validator-0's key and writes the same block itself, but a
validator holding only its own key cannot. It asks validator-0 for the block (``GET /genesis``, a
signed request, the reply signed by validator-0's enrolled key), retrying while validator-0 starts.
Nothing here trusts the block: :class:`~bmoe.run.session.Session` checks that its payload is
the one these settings and this enrolment give (``_check_genesis``) and that validator-0 sealed it.
A validator whose run directory already holds a chain fetches nothing.
"""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from bmoe.ledger.blocks import Block, block_from_bytes
from bmoe.ledger.errors import LedgerError
from bmoe.ledger.keys import Identity
from bmoe.net.errors import UnauthenticResponse
from bmoe.net.http.auth import SignedAuth
from bmoe.net.node_setup import SetupError
from bmoe.run.run_dir import CHAIN_FILE

DEFAULT_WAIT_S = 60.0


def founding_block(run_dir: Path, url: str, identity: Identity, validator0: str,
                   wait: float = DEFAULT_WAIT_S) -> Block | None:
    """Validator-0's block 0 from ``url`` (None when ``run_dir`` already has a chain); :class:`SetupError`
    if validator-0 does not answer within ``wait`` seconds or answers with something that is not a block."""
    if (run_dir / CHAIN_FILE).exists():
        return None
    deadline = time.monotonic() + wait
    problem = ""
    with httpx.Client(auth=SignedAuth(identity, trusted=[validator0]), timeout=5.0) as client:
        while time.monotonic() < deadline:
            try:
                reply = client.get(f"{url}/genesis")
            except (httpx.HTTPError, UnauthenticResponse) as exc:
                problem = str(exc) or type(exc).__name__
                time.sleep(0.2)
                continue
            if reply.status_code != 200:
                raise SetupError(f"validator-0 at {url} has no genesis to give: {reply.status_code} {reply.text[:200]}")
            try:
                return block_from_bytes(bytes.fromhex(str(reply.json()["block"])))
            except (LedgerError, ValueError, KeyError, TypeError) as exc:
                raise SetupError(f"validator-0 at {url} sent a genesis that is not a block: {exc}") from None
    raise SetupError(f"validator-0 at {url} did not give the genesis within {wait:g} s: {problem}")
