"""The ``Ledger`` port: what the round, the validators and the conformance vectors ask of a ledger.

Owns the interface every ledger backend implements (bmoe's own chain in SQLite, ``LedgerNode``; a
chain sealed through an Ethereum contract), so that the same round runs on either and the same
conformance vectors (``ledger/conformance``) judge both. A backend:

* ``check(tx)`` says why ``tx`` would be refused now (signature, then the state machine), changing nothing;
* ``submit(tx)`` checks ``tx`` and adds it to the pending block, or raises ``InvalidTransaction``;
* ``next_nonce(address)`` is the nonce ``address``'s next transaction must carry (pending ones counted);
* ``view()`` is the sealed state (callers must not mutate it);
* ``pending_view()`` is that state with the pending block applied (what the next transaction is judged against);
* ``seal(timestamp)`` seals the pending block by the backend's engine (given to the backend when it is
  built) and adopts it;
* ``adopt(block)`` follows a block sealed elsewhere (a peer, a contract) after checking it.

``seal`` and ``adopt`` judge every block by the ledger's one check-then-apply (``ledger/judge.py``), the
one a PBFT replica judges proposals by and an audit replays a chain with.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from bmoe.ledger.blocks import Block
from bmoe.ledger.state import LedgerState
from bmoe.ledger.transactions import Transaction


@runtime_checkable
class Ledger(Protocol):
    head_hash: str

    def check(self, tx: Transaction) -> str | None: ...

    def submit(self, tx: Transaction) -> None: ...

    def next_nonce(self, address: str) -> int: ...

    def view(self) -> LedgerState: ...

    def pending_view(self) -> LedgerState: ...

    def seal(self, timestamp: int) -> Block | None: ...

    def adopt(self, block: Block) -> None: ...


__all__ = ["Ledger"]
