"""Python's recursion limit as bmoe found it, kept against libraries that raise it at import.

eth-account imports py_ecc, which raises the interpreter's recursion limit to 100 000 at import, for its own
recursive code that bmoe never calls (coincurve signs). Under that limit a deeply nested JSON document makes
the C JSON decoder overflow the C stack (a segmentation fault) instead of raising ``RecursionError``, which
bmoe's strict decoders (``ledger/encoding.py``) turn into a clean refusal of the block or message. So every
module that imports those libraries calls :func:`restore_recursion_limit` right after.
"""

from __future__ import annotations

import sys

ORIGINAL_LIMIT = sys.getrecursionlimit()  # recorded when bmoe is first imported (bmoe/__init__ imports it first)


def restore_recursion_limit() -> None:
    """Put the recursion limit back to what it was when bmoe was imported."""
    if sys.getrecursionlimit() != ORIGINAL_LIMIT:
        sys.setrecursionlimit(ORIGINAL_LIMIT)
