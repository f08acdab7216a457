"""The multi-miner PoW network: an experiment on the consensus vocabulary, not how bmoe blocks are sealed.

bmoe blocks are sealed by the engines in ``bmoe.ledger.sealing``: there ``pow`` is one proposer
mining each block, and PBFT (``bmoe.consensus``) runs among re-executing validators. This package
simulates what the paper's PoW would be among competing miners (most-work fork choice, k-deep finality,
the 50 % threshold, reputation-aided difficulty) as sans-IO replicas of ``bmoe.consensus.engine``, run
in ``bmoe.consensus.sim``, and measures its time per block beside PBFT's
(``benchmarks/bench_consensus.py``, ``docs/consensus.md``). Nothing here touches the ledger's state
machine; a payload is opaque bytes judged by the host's ``validate(height, payload)``.

Modules (each opens by saying what it owns and what it must not know)
---------------------------------------------------------------------

============================  ==========================================================================
``blocks``                    PoW header, hash, work, nonce search, wire format, ``verify_block_proof``
``reputation``                reputation-aided difficulty (the paper's direction B), pure arithmetic
``miner``                     ``PowMiner``: block tree, most-work fork choice, k-deep finality, mining
``withholding``               ``WithholdingMiner``: the selfish miner of the 50 % threshold
``latency``                   ``measure_latency``: simulated time per sealed block, PoW and PBFT
============================  ==========================================================================

The generic attacks (``Silent``, ``Garbage``, ``Replay``, ``TamperProposals``) wrap a miner as they wrap
a PBFT replica: ``bmoe.consensus.byzantine``.

The miner (``miner``)
---------------------

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

Guarantees, as the tests show them (``tests/consensus/test_pow_*.py``): honest miners (3 to 5)
converge on one final prefix; forks (network delay close to the block interval) happen and resolve by
most work without touching final blocks; a partition heals by fetching the other side's blocks; blocks
with tampered payloads are refused and never final. The paper's threshold: a withholding miner
(``withholding.WithholdingMiner``, mines a private chain from genesis and publishes it once it
outweighs the public one after the public one made a block final) with 70 % of the hash power rewrites
a ``k = 6``-final block in every seeded run within 40 simulated seconds; with 25 % it never does within
that bound (Nakamoto: the catch-up probability falls like ``(q/p)**k``; at 30 % and ``k = 3`` it is
already around 1 in 10, so ``k`` must be chosen for the attacker one fears).

Reputation-aided hybrid PoW (``reputation``, the paper's direction B, ``ReputationRule(enabled=True)``): a miner's block
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

from bmoe.experiments.pow_network.blocks import verify_block_proof
from bmoe.experiments.pow_network.latency import LatencyReport, latency_table, measure_latency
from bmoe.experiments.pow_network.miner import PowConfig, PowMiner
from bmoe.experiments.pow_network.reputation import ReputationRule
from bmoe.experiments.pow_network.withholding import WithholdingMiner

__all__ = [
    "LatencyReport",
    "PowConfig",
    "PowMiner",
    "ReputationRule",
    "WithholdingMiner",
    "latency_table",
    "measure_latency",
    "verify_block_proof",
]
