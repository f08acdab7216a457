"""Which fleets a deployment refuses under the comparison in force (``bmoe.net.fleet_check``), in memory."""

from __future__ import annotations

import pytest

from bmoe.moe import experts
from bmoe.net.fleet_check import MixedFleet, check_fleet
from bmoe.protocol.config import ConfigError, RunConfig, from_dict


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


def test_integer_comparison_needs_an_integer_expert_to_accept_a_mixed_fleet() -> None:
    with pytest.raises(MixedFleet, match="comparison integer"):
        check_fleet(config(fleet="default=2,f64=2", comparison="integer"))
    presets = getattr(experts, "INTEGER_PRESETS", ())
    try:
        integer = config(fleet="default=2,f64=2", comparison="integer", expert=presets[0]) if presets else None
    except ConfigError:
        integer = None
    if integer is None:
        pytest.skip("no integer expert preset a config accepts in this tree")
    check_fleet(integer)
