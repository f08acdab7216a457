"""A real IPFS node for the tests that name one: js-ipfs from ``engines/ipfs``, started and stopped per test module.

Import the fixture into a test module (``from tests.engines.ipfs import ipfs_node  # noqa: F401``); where
the engine is not installed, every test that asks for it skips with the npm command that installs it.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bmoe.storage.ipfs_node import INSTALL_COMMAND, IpfsNode, engine_installed, start_node

SKIP_REASON = f"js-ipfs not installed: run `{INSTALL_COMMAND}`"
needs_ipfs = pytest.mark.skipif(not engine_installed(), reason=SKIP_REASON)


@pytest.fixture(scope="module")
def ipfs_node() -> Iterator[IpfsNode]:
    """One offline js-ipfs daemon on free loopback ports, its repository in a temporary directory."""
    if not engine_installed():
        pytest.skip(SKIP_REASON)
    node = start_node()
    try:
        yield node
    finally:
        node.stop()
