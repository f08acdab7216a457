"""Consensus for bmoe: PBFT as a sans-IO replica, the engine vocabulary, a deterministic simulator, attacks.

PBFT seals bmoe blocks among re-executing validators (``protocol/pbft_sealing.py`` in the simulator,
``net/validator/pbft_*.py`` across processes); the ledger judges the seal through its sealing engines
(``bmoe.ledger.sealing``, where ``pow`` is one proposer mining each block). The engine knows nothing of
MoE, tensors or the ledger's state machine: a proposal is an opaque ``bytes`` payload (a serialised
block body) named by its SHA-256, and the host judges it through ``validate(height, payload) -> str |
None`` (``None``: valid, else the reason). That is where the host re-executes a block before its
replica votes for it.

The multi-miner PoW network (competing miners, most-work fork choice, reputation-aided difficulty, the
withholding miner) and the PoW-vs-PBFT latency measurement are an experiment built on this vocabulary:
``bmoe.experiments.pow_network``. It never seals a bmoe block.

Modules (each opens by saying what it owns and what it must not know)
---------------------------------------------------------------------

============================  ==========================================================================
``engine``                    events, actions, the ``ConsensusReplica`` protocol, rejection reasons, stats
``wire``                      size limit, strict canonical JSON, typed fields, base64, signatures
``pbft_messages``             the eight PBFT messages: fields, constructors, strict parser
``pbft_rules``                pure rules: quorums, primaries, ``verify_certificate``, view-change choice
``pbft/``                     ``PbftReplica``: the PBFT state machine, one file per concern (see its package notes)
``sim``                       ``Simulator``: seeded delays, loss, partitions, crash/restart, records
``byzantine``                 attacks as wrappers around honest replicas
============================  ==========================================================================

The interface (``engine``)
--------------------------

A replica is a state machine: ``handle(event) -> list[action]``; it never performs I/O, never reads a
clock and never raises on network input (every refusal is counted in ``stats.rejected`` under a
:class:`Reason`: ``oversized``, ``malformed``, ``unknown_sender``, ``bad_signature``, ``wrong_view``,
``wrong_height``, ``replayed``, ``not_primary``, ``equivocation``, ``bad_digest``, ``bad_certificate``,
``bad_new_view``, ``invalid_payload``, ``rate_limited``, ``overloaded``; and, for the PoW experiment's
miners, ``insufficient_work``, ``wrong_difficulty``, ``invalid_parent``, ``bad_evidence``).

* Events in: ``Deliver(sender, message: bytes)``, ``Tick(now)``, ``Propose(payload)``.
* Actions out: ``Send(to | None, message)`` (``None``: every peer), ``Committed(height, payload_hash,
  payload, proof)``, ``SetTimer(at)``.
* Host contract: deliver a ``Tick`` at every ``SetTimer`` deadline and whenever time moved on before
  another event (the simulator does both); hand a client request (``Propose``) to every replica, as a
  PBFT client multicasts it, so that backups notice a primary that sits on it.

Messages are canonical JSON (``bmoe.ledger.encoding``: sorted keys, no spaces, one encoding per value;
anything else is ``malformed``), at most ``max_message_bytes`` (1 MiB by default; longer is
``oversized``). Keys are the ledger's Ed25519 identities (``bmoe.ledger.keys``).

PBFT (``pbft``, Castro & Liskov 1999)
-------------------------------------

``n`` replicas tolerate ``f = (n - 1) // 3`` Byzantine ones (``f < n/3``); a quorum is
``q = (n + f) // 2 + 1``, i.e. ``2f + 1`` for ``n = 3f + 1``. Heights are sequence numbers; the primary of
view ``v`` is ``sorted(validators)[v mod n]``. Every message is an envelope
``{"body": {..., "type", "from"}, "sig"}``, ``sig`` = Ed25519 over ``b"bmoe-pbft-v1\\0" + canonical_json(body)``;
a payload travels beside the body in base64, bound to it by the body's ``digest``:

=============  ====================================================================================
pre-prepare    ``{view, height, digest}`` + ``payload``: the primary's proposal
prepare        ``{view, height, digest}``: a backup's host accepted the payload (``validate`` is None)
commit         ``{view, height, digest}``: the sender saw the pre-prepare and ``q - 1`` prepares
checkpoint     ``{height, digest}`` every ``K`` heights; digest = hash chain of decided payload hashes
view-change    ``{view, executed, executed_cert, prepared}`` + payload of the prepared value
new-view       ``{view, view_changes: [q signed view-changes], pre_prepare}`` + payload
status         ``{view, executed, seq, waiting}``: "this is where I am", asks peers for what is missing
decided        ``{certs: [commit certificates], more}`` + payloads: catch-up for a replica behind
=============  ====================================================================================

Rules. A backup prepares height ``h`` only once it has executed ``h - 1`` and only if its host's
``validate(h, payload)`` accepts (otherwise it logs the reason, ``invalid_log``, and stays silent, so a
tampered proposal gets no quorum and the request timers replace the primary). ``q`` matching commits
(plus the payload, plus ``validate``) execute the block: ``Committed.proof`` is the commit certificate
``{"view", "height", "payload_hash", "commits": [[replica, signature], ...]}`` with ``q`` signatures,
checked on its own by ``verify_certificate(cert, validators, f)``. ``q`` matching checkpoints make a
checkpoint stable; every log entry at or below it is dropped (``retain_decided`` decided blocks are
kept to help laggards). With work pending and no commit for ``timeout``, a replica first asks its peers
(STATUS: they answer with decided blocks and certificates, the NEW-VIEW, or their votes), then after
another ``timeout`` moves to the next view (VIEW-CHANGE); ``f + 1`` view changes for higher views pull a
replica along; timeouts double after each view change until a block commits. The new primary re-proposes
the highest-view prepared value at ``e* + 1``, where ``e*`` is the highest executed height any of the
``q`` view changes proves by certificate. Because an honest replica prepares ``h`` only after executing
``h - 1``, that is the only height whose fate can be open (``pbft_rules.select_reproposal`` gives the
argument); no fresh proposal is accepted at or below it in the new view.

Guarantees, as the tests show them (``tests/consensus``):

* up to ``f`` Byzantine replicas (silent, garbage, replaying, tampering proposals and votes,
  equivocating in collusion), for ``n = 4, 7, 10``: every honest replica commits the same payloads at
  the same heights, each request once, a committed block never changes, and the group keeps committing
  (a faulty primary costs two timeouts plus a view change);
* validity beyond ``f``: an honest replica never commits a payload its own host refuses, whatever the
  number of Byzantine replicas (it re-validates before voting and before executing);
* ``f + 1`` silent (or tampering) replicas: no progress at all (2 honest of 4 cannot form a quorum of 3),
  views keep changing with back-off, nothing unsafe happens;
* ``f + 1`` colluding equivocators: safety is lost. r0 (primary) and r1 tell r2 one value and r3 another;
  each honest replica sees a full quorum and the two commit different blocks at height 1. This is the
  threshold: quorum intersection needs ``f < n/3``.
* a replica that missed blocks (crash, partition, loss) catches up from certificates it can verify.

Measured time per sealed block, PBFT beside the PoW network: ``bmoe.experiments.pow_network.latency``.
"""

from bmoe.consensus.byzantine import (
    Behaviour,
    Equivocate,
    Garbage,
    Replay,
    Silent,
    TamperProposals,
    TamperVotes,
)
from bmoe.consensus.engine import (
    Action,
    Committed,
    ConsensusReplica,
    Deliver,
    Event,
    Propose,
    Reason,
    Rejected,
    ReplicaStats,
    Send,
    SetTimer,
    Tick,
    Validate,
)
from bmoe.consensus.pbft import PbftConfig, PbftReplica
from bmoe.consensus.pbft_rules import max_faulty, quorum, verify_certificate
from bmoe.consensus.sim import Simulator

__all__ = [
    "Action",
    "Behaviour",
    "Committed",
    "ConsensusReplica",
    "Deliver",
    "Equivocate",
    "Event",
    "Garbage",
    "PbftConfig",
    "PbftReplica",
    "Propose",
    "Reason",
    "Rejected",
    "Replay",
    "ReplicaStats",
    "Send",
    "SetTimer",
    "Silent",
    "Simulator",
    "TamperProposals",
    "TamperVotes",
    "Tick",
    "Validate",
    "max_faulty",
    "quorum",
    "verify_certificate",
]
