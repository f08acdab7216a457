"""The paper's claims, measured on our results: numbers for the report and checks for the tests.

Paper (Sec. V, Fashion-MNIST under attack): B-MoE is at least 45 % better than the traditional
framework in training and 66 % better in inference; B-MoE keeps "almost the same accuracy" as
without attack; B-MoE tolerates up to a 50 % malicious ratio and degrades beyond it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bmoe.experiments.reproduction.figures import Results, _malicious_experts, _unit
from bmoe.experiments.reproduction.settings import ReproSettings


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


def training_gains(results: Results, settings: ReproSettings) -> list[Gain]:
    return [Gain(r, _unit(results, "bmoe", r)["final_test_accuracy"],
                 _unit(results, "traditional", r)["final_test_accuracy"])
            for r in settings.train_ratios if 0 < r < 0.5]


def inference_gains(results: Results, settings: ReproSettings) -> list[Gain]:
    served = {fw: _unit(results, fw, 0.0)["served"] for fw in ("bmoe", "traditional")}
    return [Gain(r, served["bmoe"][f"{r:.1f}"]["accuracy"], served["traditional"][f"{r:.1f}"]["accuracy"])
            for r in settings.serve_ratios]


def bmoe_drift(results: Results, settings: ReproSettings) -> dict[float, float]:
    """B-MoE's final accuracy under attack minus without attack, per attacked training ratio."""
    clean = _unit(results, "bmoe", 0.0)["final_test_accuracy"]
    return {r: _unit(results, "bmoe", r)["final_test_accuracy"] - clean for r in settings.train_ratios if r > 0}


def activation_of_attacked(results: Results, settings: ReproSettings) -> dict[str, float]:
    """Mean activation ratio of the experts on malicious edges (traditional), per phase and condition."""
    bad = _malicious_experts(settings.attacked_experts_ratio)
    attacked = settings.attacked_experts_ratio
    clean, under = _unit(results, "traditional", 0.0), _unit(results, "traditional", attacked)

    def mean(counts: list[int], samples: int) -> float:
        return sum(counts[e] for e in bad) / len(bad) / samples

    served = clean["served"]
    return {
        "training, not attacked": mean(clean["train_counts"], clean["train_samples"]),
        "training, attacked": mean(under["train_counts"], under["train_samples"]),
        "inference, not attacked": mean(served["0.0"]["counts"], served["0.0"]["samples"]),
        "inference, attacked": mean(served[f"{attacked:.1f}"]["counts"], served[f"{attacked:.1f}"]["samples"]),
    }


def qualitative_checks(results: Results, settings: ReproSettings) -> dict[str, bool]:
    """The claims the CI asserts on a quick reproduction (each True when it holds)."""
    served = {g.ratio: g for g in inference_gains(results, settings)}
    below = [g for r, g in served.items() if 0 < r < 0.5]
    above = [g for r, g in served.items() if r > 0.5]
    training = training_gains(results, settings)
    activation = activation_of_attacked(results, settings)
    return {
        "inference: B-MoE beats traditional below 50 %": all(g.bmoe > g.traditional for g in below),
        "training: B-MoE at least matches traditional below 50 % (on average)":
            sum(g.bmoe - g.traditional for g in training) >= 0,
        "B-MoE stays within 2 points of its clean accuracy below 50 %":
            all(abs(d) <= 0.02 for r, d in bmoe_drift(results, settings).items() if r < 0.5)
            and all(abs(g.bmoe - served[0.0].bmoe) <= 0.02 for g in below),
        "B-MoE degrades above 50 %": bool(above) and all(g.bmoe < served[0.0].bmoe - 0.02 for g in above),
        "traditional gate lowers attacked experts' activation in training":
            activation["training, attacked"] < activation["training, not attacked"],
        "... but not in inference":
            abs(activation["inference, attacked"] - activation["inference, not attacked"]) < 1e-9,
    }


def summary(results: Results, settings: ReproSettings) -> dict[str, Any]:
    return {
        "training_gains": [vars(g) | {"points": g.points, "relative_percent": g.relative}
                           for g in training_gains(results, settings)],
        "inference_gains": [vars(g) | {"points": g.points, "relative_percent": g.relative}
                            for g in inference_gains(results, settings)],
        "bmoe_drift": {f"{r:.1f}": d for r, d in bmoe_drift(results, settings).items()},
        "activation_of_attacked_experts": activation_of_attacked(results, settings),
        "checks": qualitative_checks(results, settings),
    }


