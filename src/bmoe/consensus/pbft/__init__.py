"""The PBFT replica (Castro & Liskov, OSDI '99) as a sans-IO state machine, one file per concern.

A replica owns one group member's protocol state: the view and whether it is installed, the message
log per (view, height) slot, the request queue, execution (one height at a time, in order),
checkpoints and garbage collection, the view-change timer with exponential back-off, and catch-up of
a replica that fell behind. Heights are PBFT's sequence numbers; the primary of view ``v`` is
``sorted(validators)[v mod n]``.

==================  ======================================================================================
``core``            ``PbftConfig``; the replica's fields and the helpers every concern shares
``ordering``        the normal case: pre-prepare, prepare, commit, execute
``checkpoints``     stable checkpoints and garbage collection
``view_change``     VIEW-CHANGE and NEW-VIEW
``catchup``         state transfer (STATUS, DECIDED), retransmission, ``restore`` from the host's log
``timers``          the request timer with back-off: ask peers first, then change view
``replica``         ``PbftReplica``: the concerns joined; ``handle(event) -> actions`` and host controls
==================  ======================================================================================

Must not know: what a payload means (the host's ``validate`` judges it), the transport, the clock
(only ``Tick`` tells the time), MoE or the ledger. The messages and the pure rules (quorums, primaries,
certificates, the view-change choice) are ``bmoe.consensus.pbft_messages`` and ``pbft_rules``, which
the attacks and the ledger's sealing engine share.
"""

from bmoe.consensus.pbft.core import PbftConfig
from bmoe.consensus.pbft.replica import PbftReplica

__all__ = ["PbftConfig", "PbftReplica"]
