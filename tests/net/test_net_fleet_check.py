"""Which fleets a deployment refuses under the comparison in force (``bmoe.net.fleet_check``), in memory."""

from __future__ import annotations

import pytest

from bmoe.net.fleet_check import MixedFleet, check_fleet
from bmoe.run.config import ConfigError, RunConfig, from_dict


def config(**settings: object) -> RunConfig:
    return from_dict({"num_edges": 4, **settings})


def test_profiles_that_compute_differently_are_refused_under_exact_naming_them() -> None:
    with pytest.raises(MixedFleet, match=r"\(default=2,f64=2\) and comparison exact needs equal bytes"):
        check_fleet(config(fleet="default=2,f64=2"))


@pytest.mark.parametrize("settings", [
    {"fleet": "default=2,f64=2", "comparison": "tolerance"},
    {"fleet": "default=2,threads1=2"},  # default under --threads 1 is threads1
    {"fleet": "default=3,f64=1", "malicious_ratio": 0.25},  # only the attacker differs
    {"fleet": "default=2,f64=2", "framework": "traditional", "num_experts": 4},  # nothing is compared
])
def test_fleets_whose_honest_edges_can_be_accepted_pass(settings: dict[str, object]) -> None:
    check_fleet(config(**settings))


def test_integer_comparison_accepts_a_mixed_fleet_of_integer_experts_and_refuses_float_ones() -> None:
    check_fleet(config(fleet="default=2,f64=2", comparison="integer", expert="mlp-int"))  # equal bytes anyway
    with pytest.raises(ConfigError, match="comparison integer needs an expert computed in integers"):
        config(fleet="default=2,f64=2", comparison="integer")  # refused before any fleet check
