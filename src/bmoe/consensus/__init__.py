"""Consensus for bmoe: PBFT and PoW as sans-IO replicas, a deterministic simulator, and attacks.

B-MoE seals its blocks by proof of work (the paper); PBFT is the alternative. Both engines sit
behind one interface and know nothing of MoE, tensors or the ledger's state machine: a proposal is
an opaque ``bytes`` payload (a serialised block body) named by its SHA-256, and the host judges it
through ``validate(height, payload) -> str | None`` (``None``: valid, else the reason). That is
where the host re-executes a block before its replica votes for it or mines on it.

Modules (each opens by saying what it owns and what it must not know)
---------------------------------------------------------------------

============================  ==========================================================================
``engine``                    events, actions, the ``ConsensusReplica`` protocol, rejection reasons, stats
``wire``                      size limit, strict canonical JSON, typed fields, base64, signatures
``pbft_messages``             the eight PBFT messages: fields, constructors, strict parser
``pbft_rules``                pure rules: quorums, primaries, ``verify_certificate``, view-change choice
``pbft``                      ``PbftReplica``: the PBFT state machine
``pow_blocks``                PoW header, hash, work, nonce search, wire format, ``verify_block_proof``
``pow_reputation``            reputation-aided difficulty (the paper's direction B), pure arithmetic
``pow``                       ``PowMiner``: block tree, most-work fork choice, k-deep finality, mining
``sim``                       ``Simulator``: seeded delays, loss, partitions, crash/restart, records
``byzantine``                 attacks as wrappers around honest replicas
``latency``                   ``measure_latency``: simulated time per sealed block
============================  ==========================================================================

The interface (``engine``)
--------------------------

A replica is a state machine: ``handle(event) -> list[action]``; it never performs I/O, never reads a
clock and never raises on network input (every refusal is counted in ``stats.rejected`` under a
:class:`Reason`: ``oversized``, ``malformed``, ``unknown_sender``, ``bad_signature``, ``wrong_view``,
``wrong_height``, ``replayed``, ``not_primary``, ``equivocation``, ``bad_digest``, ``bad_certificate``,
``bad_new_view``, ``invalid_payload``, ``rate_limited``, ``insufficient_work``, ``wrong_difficulty``,
``invalid_parent``, ``bad_evidence``, ``overloaded``).

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

PoW (``pow``)
-------------

Miners with stated hash-power shares. On each ``Tick`` a miner performs ``rate * share * elapsed`` real
SHA-256 attempts on a header extending its best tip; a header is
``{height, prev, payload_hash, miner, nonce, difficulty, evidence}``, its hash is SHA-256 of the canonical
JSON, valid when it has ``difficulty`` leading zero bits; the miner signs
``b"bmoe-pow-v1\\0" + hash``. Messages: ``{"kind": "block", "header", "sig", "payload", "evidence"}`` and
``{"kind": "get", "hash"}`` (to fetch a missing parent). Fork choice: most accumulated work,
``sum(2**difficulty)``, ties to the first seen. A height is reported ``Committed`` once
``k = confirmations`` blocks' worth of work (``k * 2**difficulty``) lies on top of it; ``proof`` =
``{hash, header, signature, work, chain_work, work_on_top}``, checked by ``verify_block_proof``. If the
best chain ever changes a reported height, the miner records a ``finality_violation`` and reports the
new block at that height again (history was rewritten).

Guarantees, as the tests show them: honest miners (3 to 5) converge on one final prefix; forks (network
delay close to the block interval) happen and resolve by most work without touching final blocks; a
partition heals by fetching the other side's blocks; blocks with tampered payloads are refused and never
final. The paper's threshold: a withholding miner (``byzantine.WithholdingMiner``, mines a private chain
from genesis and publishes it once it outweighs the public one after the public one made a block final)
with 70 % of the hash power rewrites a ``k = 6``-final block in every seeded run within 40 simulated
seconds; with 25 % it never does within that bound (Nakamoto: the catch-up probability falls like
``(q/p)**k``; at 30 % and ``k = 3`` it is already around 1 in 10, so ``k`` must be chosen for the
attacker one fears).

Reputation-aided hybrid PoW (the paper's direction B, ``ReputationRule(enabled=True)``): a miner's block
must meet ``base - min(floor(log2(1 + reputation)), max_bonus_bits)`` bits (never below
``min_difficulty``), reputation being derived from the chain itself (``+reward`` per block in the chain,
``-penalty`` per invalid block another miner proves by putting it in its block as evidence). Work stays
``2**difficulty``, so security still rests on hash power; reputation only changes who seals. Tests: with
equal hash power, a miner starting at reputation 15 seals about 90 % of the first blocks; the same miner
mining tampered payloads is refused, proven guilty in the chain, drops to reputation 0 and back to the
base difficulty.

Measured (``latency.latency_table()``, simulated seconds; one seeded run each)
-----------------------------------------------------------------------------

PBFT, fixed one-way delay ``d``: ``3d`` per block (pre-prepare, prepare, commit) for n = 4, 7, 10, both
queued and one at a time; messages per block ~25 / 88 / 189 (quadratic in n), ~7 / 24 / 52 kB. A silent
primary adds two timeouts and a view change. PoW: block interval ~ ``2**difficulty / rate`` whatever the
number of miners (total rate fixed), stale blocks grow when the delay approaches the interval
(~30 % at 0.125 s blocks and 20-80 ms delay), one request becomes ``k = 3`` deep in about
``(k + 2)`` intervals.
"""

from bmoe.consensus.byzantine import (
    Behaviour,
    Equivocate,
    Garbage,
    Replay,
    Silent,
    TamperProposals,
    TamperVotes,
    WithholdingMiner,
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
from bmoe.consensus.latency import LatencyReport, latency_table, measure_latency
from bmoe.consensus.pbft import PbftConfig, PbftReplica
from bmoe.consensus.pbft_rules import max_faulty, quorum, verify_certificate
from bmoe.consensus.pow import PowConfig, PowMiner
from bmoe.consensus.pow_blocks import verify_block_proof
from bmoe.consensus.pow_reputation import ReputationRule
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
    "LatencyReport",
    "PbftConfig",
    "PbftReplica",
    "PowConfig",
    "PowMiner",
    "Propose",
    "Reason",
    "Rejected",
    "Replay",
    "ReplicaStats",
    "ReputationRule",
    "Send",
    "SetTimer",
    "Silent",
    "Simulator",
    "TamperProposals",
    "TamperVotes",
    "Tick",
    "Validate",
    "WithholdingMiner",
    "latency_table",
    "max_faulty",
    "measure_latency",
    "quorum",
    "verify_block_proof",
    "verify_certificate",
]
