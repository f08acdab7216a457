"""A heterogeneous fleet for the tiny model: edges whose memories are fractions of the model's expert bytes, one too
small for any expert, and the placement transactions such a session seals."""

from __future__ import annotations

from pathlib import Path

from bmoe.ledger.blocks import Block
from bmoe.ledger.state import LedgerState, apply_block, apply_transaction, begin_block
from bmoe.ledger.transactions import Transaction
from bmoe.lm.model import MoETransformer
from bmoe.run.generation import GenerationSettings, model_objects
from bmoe.run.placement import EdgeSpec, PlacedSession, open_placed_session
from tests.generation.helpers import model


def slot_sizes(m: MoETransformer) -> list[int]:
    """Each (layer, expert) slot's object, in bytes."""
    return [len(data) for data in model_objects(m)[1]]


def fleet(m: MoETransformer) -> list[EdgeSpec]:
    """Six edges: one holds the whole model, two 90% of it, one 65%, one 40%, one less than a single expert."""
    sizes = slot_sizes(m)
    whole = sum(sizes)
    return [EdgeSpec(whole, "default", 900.0), EdgeSpec(whole * 9 // 10, "threads1", 500.0),
            EdgeSpec(whole * 9 // 10, "f64", 300.0), EdgeSpec(whole * 65 // 100, "chunked", 200.0),
            EdgeSpec(whole * 4 // 10, "threads2", 100.0), EdgeSpec(min(sizes) // 2, "default", 50.0)]


def placed(m: MoETransformer, pool: int = 8, run_dir: Path | None = None, holders: int = 3,
           specs: list[EdgeSpec] | None = None, **settings: object) -> PlacedSession:
    values: dict[str, object] = {"edges": pool, "replicas": 1, "chunk_steps": 4, **settings}
    return open_placed_session(m, GenerationSettings(**values), specs or fleet(m),  # type: ignore[arg-type]
                               holders, run_dir=run_dir)


def sealed_blocks(s: PlacedSession) -> list[Block]:
    chain = s.session.node.chain
    assert chain is not None, "a session with a run directory"
    return list(chain.iter_blocks())


def placement_transactions(run_dir: Path) -> dict[str, tuple[LedgerState, Transaction]]:
    """The first ``capability``, ``departure`` and ``placement`` transactions of a placed session whose fifth edge
    leaves, each with the state just before it."""
    s = placed(model(), run_dir=run_dir)
    s.leave(list(s.specs)[4])  # the 40% edge: the others still hold three copies
    found: dict[str, tuple[LedgerState, Transaction]] = {}
    state = LedgerState()
    for block in sealed_blocks(s):
        working = begin_block(state)
        for tx in block.transactions:
            found.setdefault(tx.kind, (begin_block(working), tx))
            apply_transaction(working, tx)
        state = apply_block(state, block)
    return {kind: found[kind] for kind in ("capability", "departure", "placement")}
