"""Search: a height, a block hash, a task id, an edge (address, ``edge-N``) or a CID, to its page.

Owns the order in which a query is read: a number is a height; a full hash a block, then an edge, then
a transaction; a CID an object; anything else a task id, then an edge name, then (a verified server's
ledger) a generation session's or a response's id; a hash prefix of at least six characters that matches
exactly one block or edge.
"""

from __future__ import annotations

from bmoe.explorer.html import path_part
from bmoe.explorer.pages.view import NotFound, View
from bmoe.explorer.receipts import read_receipts, receipts_file

MIN_PREFIX = 6


def resolve(view: View, query: str) -> str:
    """The page ``query`` names; NotFound when nothing on the chain matches."""
    index = view.index
    q = query.strip()
    if not q:
        raise NotFound("type a height, block hash, task id, edge address or CID")
    if q.isdecimal():
        if index.block(q) is None:
            raise NotFound(f"no block at height {q} (head: height {index.head.height})")
        return f"/block/{q}"
    if index.block(q) is not None:
        return f"/block/{q}"
    if q in index.mentions:
        return f"/object/{path_part(q)}"
    if index.tasks_named(q):
        return f"/task/{path_part(q)}"
    if index.edge_index(q) is not None:
        return f"/edge/{path_part(q)}"
    if q in index.transactions:
        height, _ = index.transactions[q]
        return f"/block/{height}"
    if view.generating:
        generation = _generation(view, q)
        if generation is not None:
            return generation
    if len(q) >= MIN_PREFIX:
        matches = index.prefixed(q.lower())
        if len(matches) == 1:
            return resolve(view, matches[0])
    raise NotFound(f"nothing on the chain matches {q!r}: no block, task, edge, transaction or object by that name")


def _generation(view: View, q: str) -> str | None:
    """A generation session's id, or a response's id in the server's receipts.jsonl: the generations page."""
    if q in view.index.state.generations:
        return "/generations#sessions"
    responses = read_receipts(receipts_file(view.source), view.generation_chunks).responses
    return f"/generations#response-{path_part(q)}" if any(r.id == q for r in responses) else None
