"""The two frameworks are presets: what each fixes, and that a run records only the preset's name."""

import pytest

from bmoe.run.config import RunConfig
from bmoe.verify.acceptance import RULES
from bmoe.verify.assignment import ASSIGNMENTS
from bmoe.verify.framework import BMOE, FRAMEWORKS, TRADITIONAL, framework_of


def test_traditional_is_host_assignment_sole_rule_and_no_ledger() -> None:
    assert (TRADITIONAL.assignment, TRADITIONAL.rule) == ("host", "sole")
    assert not TRADITIONAL.verifies and not TRADITIONAL.keeps_ledger
    assert TRADITIONAL.edges_in_play(num_experts=4, num_edges=10) == 4


def test_bmoe_leaves_assignment_and_rule_to_the_run_and_keeps_a_verified_ledger() -> None:
    assert (BMOE.assignment, BMOE.rule) == (None, None)
    assert BMOE.verifies and BMOE.keeps_ledger
    assert BMOE.edges_in_play(num_experts=4, num_edges=10) == 10


def test_a_preset_fixes_only_policies_that_exist() -> None:
    for preset in FRAMEWORKS.values():
        assert preset.assignment is None or preset.assignment in ASSIGNMENTS
        assert preset.rule is None or preset.rule in RULES


def test_an_unknown_framework_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="framework must be one of bmoe, traditional, got 'federated'"):
        framework_of("federated")


def test_a_run_asks_the_preset_and_records_its_name() -> None:
    config = RunConfig(framework="traditional", num_experts=4, num_edges=6, malicious_ratio=0.5).validate()
    assert config.edges_in_play == 4 and config.malicious_edges == 2
    assert config.assignment_spec() == "host"
    assert config.to_dict()["framework"] == "traditional"
