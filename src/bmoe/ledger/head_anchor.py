"""The head anchor: a small file naming the last sealed block (height and hash), replaced as each block is sealed.

Owns its format, ``{"height": H, "head_hash": "<64 hex>"}``, its atomic replacement (a temporary file
beside it, flushed, then ``os.replace``: a reader sees the old anchor or the new one, never a torn one)
and reading it back. A chain store that keeps one writes it after each block's commit, so a run killed at
any point is anchored to the last block it sealed, and a chain that later lost blocks (a truncated or
corrupted write-ahead log) no longer holds what its anchor names: the audit and the next open refuse it.

Must not know: run directories, audits, or how blocks are stored.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from bmoe.ledger.encoding import is_hex64
from bmoe.ledger.errors import ChainStoreError


@dataclass(frozen=True)
class HeadAnchor:
    height: int
    head_hash: str


def write_head_anchor(path: Path, anchor: HeadAnchor) -> None:
    """Replace ``path`` atomically with ``anchor``."""
    body = json.dumps({"height": anchor.height, "head_hash": anchor.head_hash}) + "\n"
    temp = path.parent / f".{path.name}.{secrets.token_hex(4)}.tmp"
    try:
        with open(temp, "x", encoding="utf-8") as handle:
            handle.write(body)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except OSError as err:
        raise ChainStoreError(f"cannot write the head anchor {path}: {err.strerror or err}") from None
    finally:
        temp.unlink(missing_ok=True)


def read_head_anchor(path: Path) -> HeadAnchor | None:
    """The anchor at ``path``, None if there is none; :class:`ChainStoreError` if it is unreadable."""
    if not path.exists():
        return None
    try:
        body = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise ChainStoreError(f"head anchor {path} is unreadable: {err}") from None
    height = body.get("height") if isinstance(body, dict) else None
    head = body.get("head_hash") if isinstance(body, dict) else None
    if isinstance(height, bool) or not isinstance(height, int) or height < 0 or not is_hex64(head):
        raise ChainStoreError(f"head anchor {path} does not hold a height and a block hash")
    return HeadAnchor(height, str(head))
