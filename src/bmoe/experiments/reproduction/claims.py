"""The paper's claims, measured on our results under each reading of the attack: numbers for the report
and checks for the tests.

Paper (Sec. V, Fashion-MNIST under attack): B-MoE is at least 45 % better than the traditional
framework in training and 66 % better in inference; B-MoE keeps "almost the same accuracy" as
without attack; B-MoE tolerates up to a 50 % malicious ratio and degrades beyond it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bmoe.experiments.reproduction.figures import Results, _malicious_experts, _unit, served
from bmoe.experiments.reproduction.settings import ReproSettings

# The persistent reading's inference gain at malicious ratio 0.4, asserted on the quick run in CI (relative, in
# percent). Full scale on Fashion-MNIST (docs/reproduction/REPORT.md): +85.3 % (83.13 % against 44.87 %); the
# transient reading gives +7.6 % there. The quick run (2000 test samples, 50 tasks per share) measures +104 %
# (69.90 % against 34.25 %) and +9 % under the transient reading. 50 % sits well below both persistent numbers
# and far above anything the transient reading gives, so the check tells the readings apart.
LARGE_PERSISTENT_GAIN = 50.0
PAPER_TRAINING_GAIN, PAPER_INFERENCE_GAIN = 45.0, 66.0  # "at least", percent


@dataclass(frozen=True)
class Gain:
    ratio: float
    bmoe: float
    traditional: float

    @property
    def points(self) -> float:
        return 100 * (self.bmoe - self.traditional)

    @property
    def relative(self) -> float:
        return 100 * (self.bmoe - self.traditional) / self.traditional if self.traditional else float("inf")


def training_gains(results: Results, settings: ReproSettings, reading: str) -> list[Gain]:
    return [Gain(r, _unit(results, "bmoe", r, reading)["final_test_accuracy"],
                 _unit(results, "traditional", r, reading)["final_test_accuracy"])
            for r in settings.train_ratios if 0 < r < 0.5]


def inference_gains(results: Results, settings: ReproSettings, reading: str) -> list[Gain]:
    by = {fw: served(results, fw, reading) for fw in ("bmoe", "traditional")}
    return [Gain(r, by["bmoe"][f"{r:.1f}"]["accuracy"], by["traditional"][f"{r:.1f}"]["accuracy"])
            for r in settings.serve_ratios]


def bmoe_drift(results: Results, settings: ReproSettings, reading: str) -> dict[float, float]:
    """B-MoE's final accuracy under attack minus without attack, per attacked training ratio."""
    clean = _unit(results, "bmoe", 0.0)["final_test_accuracy"]
    return {r: _unit(results, "bmoe", r, reading)["final_test_accuracy"] - clean
            for r in settings.train_ratios if r > 0}


def activation_of_attacked(results: Results, settings: ReproSettings, reading: str) -> dict[str, float]:
    """Mean activation ratio of the experts on malicious edges (traditional), per phase and condition."""
    bad = _malicious_experts(settings.attacked_experts_ratio)
    attacked = f"{settings.attacked_experts_ratio:.1f}"
    clean = _unit(results, "traditional", 0.0)
    under = _unit(results, "traditional", settings.attacked_experts_ratio, reading)
    served_by = served(results, "traditional", reading)

    def mean(counts: list[int], samples: int) -> float:
        return sum(counts[e] for e in bad) / len(bad) / samples

    return {
        "training, not attacked": mean(clean["train_counts"], clean["train_samples"]),
        "training, attacked": mean(under["train_counts"], under["train_samples"]),
        "inference, not attacked": mean(served_by["0.0"]["counts"], served_by["0.0"]["samples"]),
        "inference, attacked": mean(served_by[attacked]["counts"], served_by[attacked]["samples"]),
    }


def qualitative_checks(results: Results, settings: ReproSettings, reading: str) -> dict[str, bool]:
    """The claims the CI asserts on a quick reproduction, under ``reading`` (each True when it holds)."""
    by_ratio = {g.ratio: g for g in inference_gains(results, settings, reading)}
    below = [g for r, g in by_ratio.items() if 0 < r < 0.5]
    above = [g for r, g in by_ratio.items() if r > 0.5]
    training = training_gains(results, settings, reading)
    activation = activation_of_attacked(results, settings, reading)
    checks = {
        "inference: B-MoE beats traditional below 50 %": all(g.bmoe > g.traditional for g in below),
        "training: B-MoE at least matches traditional below 50 % (on average)":
            sum(g.bmoe - g.traditional for g in training) >= 0,
        "B-MoE stays within 2 points of its clean accuracy below 50 %":
            all(abs(d) <= 0.02 for r, d in bmoe_drift(results, settings, reading).items() if r < 0.5)
            and all(abs(g.bmoe - by_ratio[0.0].bmoe) <= 0.02 for g in below),
        "B-MoE degrades above 50 %": bool(above) and all(g.bmoe < by_ratio[0.0].bmoe - 0.02 for g in above),
        "traditional gate lowers attacked experts' activation in training":
            activation["training, attacked"] < activation["training, not attacked"],
        "... but not in inference":
            abs(activation["inference, attacked"] - activation["inference, not attacked"]) < 1e-9,
    }
    if reading == "persistent" and 0.4 in by_ratio:
        checks[f"inference gain at 0.4 is large (>= {LARGE_PERSISTENT_GAIN:g} % relative)"] = \
            by_ratio[0.4].relative >= LARGE_PERSISTENT_GAIN
    return checks


def reading_summary(results: Results, settings: ReproSettings, reading: str) -> dict[str, Any]:
    return {
        "training_gains": [vars(g) | {"points": g.points, "relative_percent": g.relative}
                           for g in training_gains(results, settings, reading)],
        "inference_gains": [vars(g) | {"points": g.points, "relative_percent": g.relative}
                            for g in inference_gains(results, settings, reading)],
        "bmoe_drift": {f"{r:.1f}": d for r, d in bmoe_drift(results, settings, reading).items()},
        "activation_of_attacked_experts": activation_of_attacked(results, settings, reading),
        "checks": qualitative_checks(results, settings, reading),
    }


def summary(results: Results, settings: ReproSettings) -> dict[str, Any]:
    """Per reading, every number above; ``checks`` flattened as "reading: claim" for the CLI and CI."""
    readings = {reading: reading_summary(results, settings, reading) for reading in settings.readings}
    checks = {f"{reading}: {name}": ok for reading, part in readings.items() for name, ok in part["checks"].items()}
    return {"readings": readings, "checks": checks}
