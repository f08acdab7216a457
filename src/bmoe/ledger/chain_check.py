"""Full verification of a stored chain.

Owns the audit of raw stored rows ``(height, hash, data)``: for each row, in order,
the data parses strictly, the stored hash equals the recomputed header hash, heights
run 0, 1, 2, ..., each prev_hash links to the previous block (``GENESIS_PREV_HASH``
for block 0), the Merkle root matches the transaction hashes, every transaction
signature and the proposer signature verify, and the header hash meets its declared
PoW difficulty (and, optionally, a required minimum).  The first failure raises
:class:`ChainIntegrityError` naming the block (and transaction).

Replaying blocks through the state machine is *not* done here: ``judge.check_then_apply`` is
:func:`check_block` then the apply, the one path every node and the audit take (the audit reads
rows with :func:`stored_blocks`). :func:`check_chain` checks stored rows alone; an ``on_block``
callback lets a caller add per-block checks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from bmoe.ledger.blocks import GENESIS_PREV_HASH, Block, block_from_bytes, header_hash
from bmoe.ledger.errors import ChainIntegrityError, InvalidBlock, LedgerError, short_hash
from bmoe.ledger.keys import verify_signature
from bmoe.ledger.merkle import merkle_root
from bmoe.ledger.pow import meets_difficulty
from bmoe.ledger.transactions import signature_verifies, tx_hash

BlockHook = Callable[[Block, str], None]
"""``on_block(block, block_hash)``: called after a block passed every check.  Raise a
:class:`LedgerError` to reject it (wrapped into :class:`ChainIntegrityError`)."""


@dataclass(frozen=True)
class ChainReport:
    """Summary of a chain that passed :func:`check_chain`.  Empty chain: height -1, head_hash None."""

    height: int
    head_hash: str | None
    blocks: int
    transactions: int
    signatures: int


SealCheck = Callable[[Block], "str | None"]
"""``seal_check(block)``: why the block's seal breaks the chain's own rules (who may seal, by which
engine), or None.  An auditor builds it from the genesis (:mod:`bmoe.ledger.seal_rules`)."""


def read_row(height: int, stored_hash: object, data: object) -> tuple[Block, str]:
    """One stored row ``(height, hash, data)`` as a block: its data parses strictly, its header names
    ``height``, its stored hash is the header's; return (block, hash), else :class:`ChainIntegrityError`
    naming the first fault. Every reader of stored rows holds them to this (the plain audit, a local copy
    of a chain sealed on Ethereum)."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise ChainIntegrityError(height, f"block data is {type(data).__name__}, not bytes")
    try:
        block = block_from_bytes(bytes(data))
    except InvalidBlock as exc:
        raise ChainIntegrityError(height, f"unreadable block data: {exc.reason}") from None
    header = block.header
    if header.height != height:
        raise ChainIntegrityError(height, f"header says height {header.height}")
    digest = header_hash(header)
    if stored_hash != digest:
        raise ChainIntegrityError(
            height, f"stored hash {short_hash(str(stored_hash))} != header hash {short_hash(digest)}"
        )
    return block, digest


def stored_blocks(rows: Iterable[tuple[int, str, bytes]]) -> Iterator[Block]:
    """The blocks of stored rows in order, each read by :func:`read_row`; heights must run 0, 1, 2, ..."""
    for expected_height, row in enumerate(rows):
        try:
            height, stored_hash, data = row
        except (TypeError, ValueError):
            raise ChainIntegrityError(expected_height, "stored row is not (height, hash, data)") from None
        if isinstance(height, bool) or height != expected_height:
            raise ChainIntegrityError(expected_height, f"missing: the next stored row has height {height!r}")
        yield read_row(height, stored_hash, data)[0]


def check_block(block: Block, prev_hash: str, min_difficulty: int | None = None,
                seal_check: SealCheck | None = None) -> int:
    """Verify one block on top of ``prev_hash``: its link, Merkle root, every signature, its PoW (a PoW
    header) and its seal (``seal_check``); :class:`ChainIntegrityError` naming the first fault, else the
    number of signatures checked (a transaction object's once in a process, ``transactions.signature_verifies``:
    a block read from bytes has new objects). Every block anything judges passes here: stored rows
    (:func:`check_chain`), and through ``judge.check_then_apply`` the blocks a node seals, adopts or replays, the
    proposals a PBFT replica votes on, and the chain an audit replays."""
    header = block.header
    height = header.height
    digest = header_hash(header)
    if header.prev_hash != prev_hash:
        raise ChainIntegrityError(
            height, f"prev_hash {short_hash(header.prev_hash)} does not link to {short_hash(prev_hash)}"
        )
    hashes = [tx_hash(tx) for tx in block.transactions]
    root = merkle_root(hashes)
    if header.merkle_root != root:
        raise ChainIntegrityError(
            height, f"merkle_root {short_hash(header.merkle_root)} != computed {short_hash(root)}"
        )
    for index, (tx, h) in enumerate(zip(block.transactions, hashes, strict=True)):
        if not signature_verifies(tx):
            raise ChainIntegrityError(height, "bad signature", tx_index=index, tx_hash=h)
    if not verify_signature(header.proposer, bytes.fromhex(digest), block.proposer_signature):
        raise ChainIntegrityError(height, f"bad proposer signature (proposer {short_hash(header.proposer)})")
    if header.consensus == "pow":  # the work a PoW header declares is a property of the block alone
        if not meets_difficulty(digest, header.difficulty):
            raise ChainIntegrityError(height, f"insufficient proof of work for difficulty {header.difficulty}")
        if min_difficulty is not None and header.difficulty < min_difficulty:
            raise ChainIntegrityError(height, f"difficulty {header.difficulty} below required {min_difficulty}")
        if block.certificate is not None:
            raise ChainIntegrityError(height, "a PoW block must not carry a certificate")
    elif seal_check is None:
        raise ChainIntegrityError(height, f"a {header.consensus} block, but no genesis rules to check its seal against")
    if seal_check is not None:
        reason = seal_check(block)
        if reason is not None:
            raise ChainIntegrityError(height, f"seal: {reason}")
    return len(block.transactions) + 1


def check_chain(
    rows: Iterable[tuple[int, str, bytes]],
    *,
    min_difficulty: int | None = None,
    on_block: BlockHook | None = None,
    seal_check: SealCheck | None = None,
) -> ChainReport:
    """Verify stored rows (e.g. ``ChainStore.iter_raw()``) from genesis; return a report.

    ``min_difficulty``: if given, every header must declare at least this difficulty
    (a header's own ``difficulty`` is otherwise trusted: the consensus-required value
    belongs to the caller; ``seal_check`` is where an auditor enforces the genesis's rules).
    Raises :class:`ChainIntegrityError` on the first failure.
    """
    blocks = 0
    prev_hash = GENESIS_PREV_HASH
    transactions = signatures = 0
    for block in stored_blocks(rows):
        height = block.header.height
        signatures += check_block(block, prev_hash, min_difficulty, seal_check)
        prev_hash = header_hash(block.header)
        if on_block is not None:
            try:
                on_block(block, prev_hash)
            except ChainIntegrityError:
                raise
            except LedgerError as exc:
                raise ChainIntegrityError(height, str(exc)) from exc
        transactions += len(block.transactions)
        blocks += 1
    return ChainReport(
        height=blocks - 1,
        head_hash=prev_hash if blocks else None,
        blocks=blocks,
        transactions=transactions,
        signatures=signatures,
    )
