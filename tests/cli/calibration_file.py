"""A ``calibration.json`` as ``bmoe calibrate`` writes it (its own ``recommend`` and ``to_json``), from stated
honest divergences instead of a measurement, so a test picks the fleet's honest maxima in milliseconds."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from bmoe.experiments.calibration.bound import recommend, stability
from bmoe.experiments.calibration.measure import METRICS, PairDivergence
from bmoe.experiments.calibration.report import Calibration, to_json


def calibration_body(result_max: float = 2e-6, update_max: float = 4e-7, safety_factor: float = 10.0,
                     fleet: str = "default=3,f64=2") -> dict[str, Any]:
    """calibration.json's content for a fleet whose honest divergences peak at ``result_max`` and ``update_max``."""
    honest = {metric: np.linspace(0.0, result_max, 64) for metric in METRICS}
    honest["update_abs"] = np.linspace(0.0, update_max, 64)
    attack = {metric: np.full(64, 0.9) for metric in METRICS}
    pairs = [PairDivergence("default", "f64", honest)]
    settings = {"fleet": fleet, "dataset": "synthetic", "preset": "mlp", "experts": 1, "samples": 64, "seed": 0,
                "train_steps": 20, "safety_factor": safety_factor, "attack_noise_std": 0.5, "device": "cpu",
                "torch": "test"}
    recommendation = recommend(pairs, attack, {1e-3: np.full(64, 1e-3)}, safety_factor)
    return to_json(Calibration(settings, [], pairs, attack, stability(pairs), recommendation))


def write_calibration(path: Path, **kwargs: Any) -> Path:
    path.write_text(json.dumps(calibration_body(**kwargs), indent=2) + "\n")
    return path
