"""What a hostile party with write access to a run directory (and no key of the run, or with one) can
do to its chain: rewrite rows, re-seal blocks, relink everything after them, drop tables."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from collections.abc import Callable
from pathlib import Path

from bmoe.ledger.blocks import Block, BlockHeader, block_from_bytes, block_to_bytes, header_hash
from bmoe.ledger.keys import Identity
from bmoe.ledger.pow import mine

Row = tuple[int, str, bytes]
HeaderChange = Callable[[BlockHeader], BlockHeader]


def read_rows(chain: Path) -> list[Row]:
    with sqlite3.connect(chain) as db:
        return [(int(h), str(d), bytes(b)) for h, d, b in db.execute("SELECT height, hash, data FROM blocks "
                                                                       "ORDER BY height")]


def write_rows(chain: Path, rows: list[tuple[object, object, object]]) -> None:
    """Replace every stored row (no check at all: SQLite accepts what it is given)."""
    db = sqlite3.connect(chain)
    try:
        db.execute("DELETE FROM blocks")
        db.executemany("INSERT INTO blocks (height, hash, data) VALUES (?, ?, ?)", rows)
        db.commit()
    finally:
        db.close()


def execute(chain: Path, sql: str) -> None:
    db = sqlite3.connect(chain)
    try:
        db.execute(sql)
        db.commit()
    finally:
        db.close()


def blocks_of(chain: Path) -> list[Block]:
    return [block_from_bytes(data) for _, _, data in read_rows(chain)]


def reseal(block: Block, signer: Identity, prev_hash: str, change: HeaderChange = lambda h: h) -> Block:
    """``block`` with its header changed, relinked to ``prev_hash``, re-mined and signed by ``signer``."""
    header = change(dataclasses.replace(block.header, prev_hash=prev_hash, proposer=signer.address, nonce=0))
    mined = mine(header)
    return Block(mined, block.transactions, signer.sign(bytes.fromhex(header_hash(mined))), None)


def reseal_from(chain: Path, height: int, signer: Identity, change: HeaderChange = lambda h: h) -> str:
    """Re-seal block ``height`` (with ``change``) and every block after it, relinked; return the new head."""
    rows = read_rows(chain)
    out: list[tuple[object, object, object]] = [row for row in rows if row[0] < height]
    prev = rows[height - 1][1] if height > 0 else "0" * 64
    for _, _, data in rows[height:]:
        block = reseal(block_from_bytes(data), signer, prev, change)
        prev = header_hash(block.header)
        out.append((block.header.height, prev, block_to_bytes(block)))
    write_rows(chain, out)
    return prev


def append_block(chain: Path, block: Block) -> str:
    rows = read_rows(chain)
    digest = header_hash(block.header)
    write_rows(chain, [*rows, (block.header.height, digest, block_to_bytes(block))])
    return digest


def record_head(run_dir: Path, head: str, height: int) -> None:
    """What a thorough attacker does next: make metrics.json name the forged head."""
    path = run_dir / "metrics.json"
    body = json.loads(path.read_text())
    body["summary"].update(head_hash=head, height=height)
    path.write_text(json.dumps(body))


def tree_state(root: Path) -> dict[str, tuple[int, int, bytes]]:
    """Every path under ``root`` with its mode, mtime and bytes: equal before and after means untouched."""
    state = {}
    for path in sorted(root.rglob("*")):
        info = path.lstat()
        state[str(path.relative_to(root))] = (info.st_mode, info.st_mtime_ns,
                                              path.read_bytes() if path.is_file() else b"")
    return state
