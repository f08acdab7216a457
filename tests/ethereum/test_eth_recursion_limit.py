"""eth-account (through py_ecc) raises Python's recursion limit at import; bmoe puts it back, so a deeply nested
block read by a process that seals on Ethereum is refused cleanly instead of crashing the process."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = """
import sys
limit = sys.getrecursionlimit()
import bmoe.ethereum.backend, bmoe.ethereum.audit  # every module that imports web3 and eth-account
assert sys.getrecursionlimit() == limit, (sys.getrecursionlimit(), limit)
from bmoe.ledger.blocks import block_from_bytes
from bmoe.ledger.errors import InvalidBlock
try:
    block_from_bytes(b'{"header":' + b"[" * 100_000 + b"]" * 100_000 + b"}")
except InvalidBlock as err:
    print("refused:", err)
"""


def test_a_deeply_nested_block_is_refused_in_a_process_that_imported_web3() -> None:
    result = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "refused:" in result.stdout and "bad encoding" in result.stdout
