"""A real Ethereum node for the tests that name one: anvil from ``engines/ethereum``, started and stopped per module.

Import the fixture into a test module (``from tests.engines.anvil import anvil_node  # noqa: F401``); where
the engine is not installed, every test that asks for it skips with the npm command that installs it.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bmoe.ethereum.anvil import INSTALL_COMMAND, Anvil, anvil_installed

SKIP_REASON = f"anvil not installed: run `{INSTALL_COMMAND}`"
needs_anvil = pytest.mark.skipif(not anvil_installed(), reason=SKIP_REASON)


@pytest.fixture(scope="module")
def anvil_node() -> Iterator[Anvil]:
    """One anvil on a free loopback port (a block per transaction, EIP-7825's gas cap on), its home in a
    temporary directory."""
    if not anvil_installed():
        pytest.skip(SKIP_REASON)
    with Anvil() as node:
        yield node
