"""Fig. 4b: latency per training round, measured parts and modelled parts shown separately.

- edge compute (measured): the busiest edge's compute time. Each expert computation is timed once,
  and an edge is charged for every expert it computes. In B-MoE every edge computes every activated
  expert; in the traditional framework edge i computes expert i. Edges work in parallel.
- server / validators (measured): gate evaluation, recording, verification, aggregation, loss and
  gate update, ledger bookkeeping.
- communication (modelled): the busiest edge's bytes (task, activation and experts down; results
  up; in training also gradients down and weights up) over ``bandwidth_mbps``.
- consensus (measured + modelled): B-MoE's sealing as the engine took it: the PoW actually mined at
  the run's difficulty, or PBFT's three message rounds (plus any view change) in the simulated
  network; plus ``block_interval_s`` of modelled waiting per block. None in the traditional framework.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from bmoe.experiments.reproduction.settings import LatencyModel
from bmoe.verify.framework import framework_of

COMPONENTS = ("edge compute", "server / validators", "communication", "consensus")


def round_latency(timing: Mapping[str, float], framework: str, model: LatencyModel) -> dict[str, float]:
    server = timing["time_gate"] + timing["time_verify"] + timing["time_loss"]
    consensus = 0.0
    if framework_of(framework).keeps_ledger:
        consensus = timing["time_mine"] + model.block_interval_s  # what the engine reported for sealing
    else:
        server += timing["time_consensus"]  # the state machine's bookkeeping, no consensus
    return {
        "edge compute": timing["time_edge"],
        "server / validators": server,
        "communication": timing["bytes_max_edge"] * 8 / (model.bandwidth_mbps * 1e6),
        "consensus": consensus,
    }


def mean_latency(rounds: Iterable[Mapping[str, float]], framework: str, model: LatencyModel) -> dict[str, float]:
    rows = [round_latency(r, framework, model) for r in rounds]
    if not rows:
        return dict.fromkeys(COMPONENTS, 0.0)
    return {part: sum(row[part] for row in rows) / len(rows) for part in COMPONENTS}
