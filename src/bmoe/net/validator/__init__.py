"""The validator process: the round's ledger side over HTTP, under PoW (one validator) or PBFT (n replicas).

Owns :mod:`.service` (routes, task queue, the round's worker), :mod:`.network_edges` (the round's
``EdgeGateway`` over HTTP), :mod:`.task_records`, :mod:`.pbft_service` and :mod:`.pbft_transport` (a PBFT
replica hosted over signed HTTP), :mod:`.genesis_fetch` and :mod:`.command` (``bmoe validator``,
``python -m bmoe.net.validator``). The round itself is ``protocol``'s; nothing of it is re-implemented here.
"""
