"""The bound's price, measured in one run: what attackers just inside the tolerance bound achieve.

Digits, N=10, K=3, M=10, a mixed honest fleet (threads1=4,f64=3,chunked=3), 30 % colluding attackers
(the last 3 edges: one numeric profile, so they publish identical bytes). Scenarios:

- B-MoE under ``--comparison tolerance`` (default bounds) with no attack, with ``bound_hug`` at
  0.9 of the bound (inside: the attackers join the honest group), with the same attack at 10⁴ x the
  bound (outside), and with the paper's Gaussian attack (std 0.5, p 0.2) for reference;
- the traditional framework (each host's answer accepted unverified) with no attack, ``bound_hug``
  at the same magnitude (0.9 of the bound) and at 10⁴ x the bound (no bound binds there), and Gaussian.

Per scenario: test accuracy of the model trained under the attack (the ledger's model computed
locally, and the test set served by the framework: the edges answer, the attack included, B-MoE
verifying), and of the clean run's model served with the attackers answering (the attack at
inference only: attacked in training, the traditional gate learns to route around the attacked
experts, so serving is where the traditional framework is hurt); misbehaviour records against
honest edges and against attackers; how far the accepted values moved, in the comparison's metric
(results: per-sample ‖Δ‖/max(‖y‖, 0.1); updates: max |Δw|), between the recorded accepted value and
the median of the honest answers alone, next to the honest spread (the largest distance between two
honest answers); and the final model's drift (max |Δw| over the experts) from the clean run of the
same framework.

    python benchmarks/bound_price.py [--rounds 50]
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass, field

import torch

from bmoe.data import Dataset, load_dataset
from bmoe.ledger.state import TaskState
from bmoe.protocol.comparisons.grouping import Expected, Group, accepted_value, decode_answer, distance
from bmoe.protocol.grouped_check import accepted_object, regroup
from bmoe.protocol.round import RoundOutcome
from bmoe.run.config import RunConfig
from bmoe.run.session import Session
from bmoe.storage import cid_of, deserialize_tensors
from bmoe.verify.comparison import Tolerance

FLEET = "threads1=4,f64=3,chunked=3"
HUG = {"probability": 1.0, "margin": 0.9}
SCENARIOS: list[tuple[str, str, str, dict[str, float]]] = [  # label, framework, attack ("" none), params
    ("B-MoE, no attack", "bmoe", "", {}),
    ("B-MoE, bound_hug 0.9 x bound", "bmoe", "bound_hug", HUG),
    ("B-MoE, bound_hug 1e4 x bound", "bmoe", "bound_hug", {**HUG, "margin": 1e4}),
    ("B-MoE, gaussian std 0.5 p 0.2", "bmoe", "gaussian", {"probability": 0.2, "noise_std": 0.5}),
    ("traditional, no attack", "traditional", "", {}),
    ("traditional, bound_hug 0.9 x bound", "traditional", "bound_hug", HUG),
    ("traditional, bound_hug 1e4 x bound", "traditional", "bound_hug", {**HUG, "margin": 1e4}),
    ("traditional, gaussian std 0.5 p 0.2", "traditional", "gaussian", {"probability": 0.2, "noise_std": 0.5}),
]


@dataclass
class Shift:
    """Per phase, the largest over all decisions: accepted vs honest-only median, the honest spread,
    and the attackers' distance to the group's medoid; and how often the attackers were inside it."""

    moved: dict[str, float] = field(default_factory=lambda: {"result": 0.0, "update": 0.0})
    spread: dict[str, float] = field(default_factory=lambda: {"result": 0.0, "update": 0.0})
    attacker: dict[str, float] = field(default_factory=lambda: {"result": 0.0, "update": 0.0})
    inside: int = 0
    decisions: int = 0

    def observe(self, session: Session, outcome: RoundOutcome) -> None:
        state = session.node.state
        honest = {edge.address for edge in session.edges if not edge.behaviour.malicious}
        for task in state.tasks.values():
            for phase, accepted in task.accepted_cids.items():
                for expert, cid in sorted(accepted.items()):
                    if cid is not None:
                        self._decision(session, task, phase, expert, cid, honest)

    def _decision(self, session: Session, task: TaskState, phase: str, expert: int, cid: str,
                  honest: set[str]) -> None:
        state, store = session.node.state, session.store
        comparison = state.comparison
        assert isinstance(comparison, Tolerance)
        grouping = regroup(store, comparison, state, task, phase, expert)
        committed = task.commitments[phase][expert]
        recorded = accepted_object(comparison, grouping, committed, phase)
        assert cid_of(recorded) == cid, "the recomputed accepted value is not the recorded one"
        digests = {edge: c[0] for edge, c in committed.items()}
        mine = sorted(edge for edge in committed if edge in honest)
        values = [grouping.values[digests[edge]] for edge in mine]
        alone = accepted_value(grouping, Group(tuple(mine), "", True), digests, phase)
        expected = _expected(values[0], phase)
        moved = distance(decode_answer(recorded, expected), decode_answer(alone, expected),  # type: ignore[arg-type]
                         phase, comparison)
        spread = max(distance(a, b, phase, comparison) for a in values for b in values)
        attackers = [grouping.distances[edge] for edge in committed if edge not in honest]
        self.moved[phase] = max(self.moved[phase], moved)
        self.spread[phase] = max(self.spread[phase], spread)
        self.attacker[phase] = max([self.attacker[phase], *(d for d in attackers if d is not None)])
        self.decisions += 1
        self.inside += bool(attackers) and set(committed) - honest <= set(grouping.groups[0].edges)


def _expected(value: dict[str, torch.Tensor], phase: str) -> Expected:
    if phase == "result":
        rows, classes = value["output"].shape
        return Expected("result", rows=rows, classes=classes)
    return Expected.update_like(value)


def config_for(framework: str, attack: str, params: dict[str, float], rounds: int) -> RunConfig:
    comparison = {"comparison": "tolerance"} if framework == "bmoe" else {}
    attacked = {"malicious_ratio": 0.3, "attack": attack, "attack_params": params} if attack else {}
    return RunConfig(framework=framework, dataset="digits", rounds=rounds, eval_every=10**6, fleet=FLEET,
                     seed=0, **comparison, **attacked)  # type: ignore[arg-type]


def train(config: RunConfig, data: Dataset) -> tuple[Session, dict[str, object]]:
    """Train ``config``; the session (open: the caller closes it) and what was measured."""
    shift = Shift()
    session = Session(config, dataset=data)  # objects kept: the update bases are regrouped
    observe = (lambda outcome: shift.observe(session, outcome)) if config.framework == "bmoe" else None
    session.train(on_round=observe)
    records = session.node.state.edge_records
    flagged = {edge.address: records[edge.address].dissent + records[edge.address].withheld
               if edge.address in records else 0 for edge in session.edges}
    weights = [deserialize_tensors(session.store.get(cid))[0] for cid in session.node.state.expert_cids]
    accuracy = session.evaluate()  # the ledger's model, computed locally
    served = session.infer_test_set()  # the test set through the framework: the edges answer, attacks included
    return session, {"accuracy": accuracy, "served": served, "shift": shift, "weights": weights,
                     "honest_records": sum(n for e, n in flagged.items() if not _malicious(session, e)),
                     "attacker_records": sum(n for e, n in flagged.items() if _malicious(session, e))}


def served_under(clean: Session, config: RunConfig) -> float:
    """The clean-trained model served with ``config``'s attackers answering (the attack at inference only)."""
    clean.set_edge_behaviours(config)
    return clean.infer_test_set()


def _malicious(session: Session, address: str) -> bool:
    return any(edge.address == address and edge.behaviour.malicious for edge in session.edges)


def drift(a: list[dict[str, torch.Tensor]], b: list[dict[str, torch.Tensor]]) -> float:
    return max(float((x[name] - y[name]).abs().max()) for x, y in zip(a, b, strict=True) for name in x)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=50)
    args = parser.parse_args()
    data = load_dataset("digits")
    started = time.perf_counter()
    results: dict[str, dict[str, object]] = {}
    clean: dict[str, Session] = {}
    try:
        for label, framework, attack, params in SCENARIOS:
            config = config_for(framework, attack, params, args.rounds)
            session, results[label] = train(config, data)
            if not attack:
                clean[framework] = session
                results[label]["deployed"] = results[label]["served"]
                continue
            session.close()
            results[label]["deployed"] = served_under(clean[framework], config)
    finally:
        for session in clean.values():
            session.close()
    baseline = {"bmoe": results[SCENARIOS[0][0]], "traditional": results[SCENARIOS[4][0]]}
    print(f"digits, N=10 K=3 M=10, fleet {FLEET}, {args.rounds} training rounds, attackers: the last 3 edges "
          f"(colluding); B-MoE under tolerance (result bound {Tolerance().result_bound:g}, update bound "
          f"{Tolerance().update_bound:g}); measured in {time.perf_counter() - started:.0f} s")
    print("| scenario | test accuracy: model trained under the attack | the same, served by the edges "
          "| the clean-trained model served under the attack | records vs honest "
          "| records vs attackers | attackers inside the group "
          "| result moved / honest spread | update moved / honest spread | attackers' distance (result, update) "
          "| model drift vs clean |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for label, framework, _, _ in SCENARIOS:
        r = results[label]
        s: Shift = r["shift"]  # type: ignore[assignment]
        grouped = framework == "bmoe"
        cells = [f"{r['accuracy']:.4f}", f"{r['served']:.4f}", f"{r['deployed']:.4f}",
                 str(r["honest_records"]), str(r["attacker_records"]),
                 f"{s.inside}/{s.decisions}" if grouped else "n/a (unverified)",
                 f"{s.moved['result']:.2e} / {s.spread['result']:.2e}" if grouped else "n/a",
                 f"{s.moved['update']:.2e} / {s.spread['update']:.2e}" if grouped else "n/a",
                 f"{s.attacker['result']:.2e}, {s.attacker['update']:.2e}" if grouped else "n/a",
                 f"{drift(r['weights'], baseline[framework]['weights']):.2e}"]  # type: ignore[arg-type]
        print(f"| {label} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
