"""Owns the recommendation: which metric a tolerance comparison should bound, the bound itself, the
false-accusation rate it implies, and how far it sits below the paper's attack.

The bound is ``safety_factor × max(observed honest maximum, FLOAT32_EPS)`` on the per-sample
normalised error (the floor keeps a fleet whose profiles agree bit for bit from getting a bound of
0). The false-accusation rate is the share of honest per-sample comparisons above the bound; when
none is, the rule of three gives its upper 95 % bound, 3 / n.

Must not know: how results were computed, file formats.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from bmoe.experiments.calibration.measure import NORM_FLOOR, OUTPUT_METRICS, PairDivergence
from bmoe.verify.bound_window import FLOAT32_EPS, FLOORS

METRIC = "per_sample"
__all__ = ["FLOAT32_EPS", "METRIC", "Recommendation", "recommend", "stability"]


@dataclass(frozen=True)
class Recommendation:
    """The recommended bound and what it implies; written to calibration.json."""

    metric: str
    norm_floor: float
    observed_max: float
    safety_factor: float
    bound: float
    honest_comparisons: int
    above_bound: int
    false_accusation_rate: float
    false_accusation_basis: str  # "observed" or "rule of three (upper 95 %)"
    attack_min: float
    attack_median: float
    attack_margin: float  # attack_min / bound
    attack_scan: list[dict[str, float]]  # per weaker noise std: its median divergence, share of samples caught
    smallest_caught_noise_std: float | None  # the smallest scanned std whose every sample exceeds the bound
    update_observed_max: float
    update_bound: float  # safety_factor × max(observed update |Δ|, FLOAT32_EPS × 1e-2)
    update_attack_median: float

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def _ratio(top: float, bottom: float) -> float | None:
    """top / bottom; 1 when both are 0, None (unbounded) when only the bottom is."""
    return top / bottom if bottom > 0 else (None if top > 0 else 1.0)


def stability(pairs: list[PairDivergence]) -> dict[str, dict[str, float | None]]:
    """Per output metric, how steady its honest tail is: ``tail_ratio`` = pooled max / pooled p99
    (a heavy tail needs a large safety factor) and ``pair_spread`` = largest / smallest per-pair
    maximum over the pairs that differ at all (a bound set on one pair misfits another)."""
    result: dict[str, dict[str, float | None]] = {}
    for metric in OUTPUT_METRICS:
        pooled = np.concatenate([pair.values[metric] for pair in pairs])
        maxima = [float(pair.values[metric].max()) for pair in pairs if pair.values[metric].max() > 0]
        result[metric] = {"tail_ratio": _ratio(float(pooled.max()), float(np.quantile(pooled, 0.99))),
                          "pair_spread": _ratio(max(maxima), min(maxima)) if maxima else 1.0}
    return result


def recommend(pairs: list[PairDivergence], attack: dict[str, np.ndarray], scan: dict[float, np.ndarray],
              safety_factor: float) -> Recommendation:
    honest = np.concatenate([pair.values[METRIC] for pair in pairs])
    observed = float(honest.max())
    bound = safety_factor * max(observed, FLOORS["result"])
    above = int(np.count_nonzero(honest > bound))
    n = int(honest.size)
    rate, basis = (above / n, "observed") if above else (3.0 / n, "rule of three (upper 95 %)")
    attack_values = attack[METRIC]
    attack_median = float(np.median(attack_values))
    caught = [{"noise_std": std, "median": float(np.median(values)),
               "caught_share": float(np.count_nonzero(values > bound) / values.size)}
              for std, values in sorted(scan.items())]
    updates = np.concatenate([pair.values["update_abs"] for pair in pairs])
    update_observed = float(updates.max())
    return Recommendation(
        metric=METRIC, norm_floor=NORM_FLOOR, observed_max=observed, safety_factor=safety_factor, bound=bound,
        honest_comparisons=n, above_bound=above, false_accusation_rate=rate, false_accusation_basis=basis,
        attack_min=float(attack_values.min()), attack_median=attack_median,
        attack_margin=float(attack_values.min()) / bound, attack_scan=caught,
        smallest_caught_noise_std=min((row["noise_std"] for row in caught if row["caught_share"] == 1.0), default=None),
        update_observed_max=update_observed,
        update_bound=safety_factor * max(update_observed, FLOORS["update"]),
        update_attack_median=float(np.median(attack["update_abs"])))
