"""Every run setting is checked as a whole: type, finiteness, range and how settings combine.

Table-driven over every RunConfig field, so a new field without a rule fails here.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

import pytest
import torch

from bmoe.ledger.keys import derive_identity
from bmoe.run.config import RunConfig, from_dict
from bmoe.run.config_checks import ConfigError
from bmoe.run.settings.limits import MAX_SEED
from bmoe.run.settings.registry import SETTINGS

FIELDS = [f.name for f in dataclasses.fields(RunConfig)]
NUMERIC = [name for name in FIELDS if SETTINGS[name].kind in ("int", "float")]
HOSTILE_NUMBERS: list[Any] = [math.nan, math.inf, -math.inf, 0, 0.0, -1, -1e-9, 10**30, 2**64, 10**400, "4", True, [1]]
# values outside a field's own table that are nevertheless legitimate (everything else must be refused)
LEGITIMATE = [("balance", 0), ("balance", 0.0), ("malicious_ratio", 0), ("malicious_ratio", 0.0), ("difficulty", 0),
              ("byzantine_validators", 0), ("seed", 0), ("stake", 0), ("reward", 0), ("slash", 0), ("min_stake", 0),
              ("stall_after", 0)]


def _legitimate(name: str, value: Any) -> bool:
    return any(name == n and type(value) is type(v) and value == v for n, v in LEGITIMATE)


def test_every_setting_has_a_rule() -> None:
    assert set(FIELDS) == set(SETTINGS)


def test_the_defaults_are_valid() -> None:
    assert RunConfig().validate() == RunConfig()


@pytest.mark.parametrize("name", NUMERIC)
@pytest.mark.parametrize("value", HOSTILE_NUMBERS, ids=repr)
def test_a_hostile_number_is_refused_naming_the_setting_unless_it_is_legitimate(name: str, value: Any) -> None:
    config = dataclasses.replace(RunConfig(), **{name: value})
    if _legitimate(name, value):
        config.validate()
        return
    with pytest.raises(ConfigError, match=name):
        config.validate()


@pytest.mark.parametrize("name", [n for n in FIELDS if SETTINGS[n].kind in ("str", "bool")])
@pytest.mark.parametrize("value", [3, 1.5, ["x"], {"a": 1}, b"bytes"], ids=repr)
def test_a_value_of_the_wrong_type_is_refused_naming_the_setting(name: str, value: Any) -> None:
    with pytest.raises(ConfigError, match=name):
        dataclasses.replace(RunConfig(), **{name: value}).validate()


@pytest.mark.parametrize("name", [n for n in FIELDS if not SETTINGS[n].nullable])
def test_none_is_refused_where_a_setting_needs_a_value(name: str) -> None:
    with pytest.raises(ConfigError, match=name):
        dataclasses.replace(RunConfig(), **{name: None}).validate()


@pytest.mark.parametrize("name", ["framework", "rule", "consensus", "validator_attack", "expert", "comparison"])
def test_an_unknown_choice_is_refused_naming_the_setting(name: str) -> None:
    with pytest.raises(ConfigError, match=f"{name} must be one of"):
        dataclasses.replace(RunConfig(), **{name: "nonsense"}).validate()


@pytest.mark.parametrize(("params", "needle"), [
    ({"probability": math.nan}, "probability"), ({"probability": math.inf}, "probability"),
    ({"probability": -0.1}, "probability"), ({"probability": 1.5}, "probability"),
    ({"noise_std": math.nan}, "noise_std"), ({"noise_std": math.inf}, "noise_std"),
    ({"noise_std": -1.0}, "noise_std"), ({"noise_std": 1e300}, "noise_std"), ({"noise_std": 10**400}, "noise_std"),
    ({"noise_std": "big"}, "attack_params"), ({"probability": True}, "attack_params"),
    ({"nosuch": 1.0}, "no parameter"),
])
def test_attack_parameters_must_be_finite_and_in_range(params: dict[str, Any], needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        RunConfig(attack_params=params).validate()


@pytest.mark.parametrize(("attack", "params", "needle"), [
    ("scale", {"factor": math.inf}, "factor"), ("scale", {"factor": -math.nan}, "factor"),
    ("random", {"std": -2.0}, "std"), ("sleeper", {"wake_round": -1.0}, "wake_round"),
    ("sleeper", {"wake_round": math.inf}, "wake_round"),
])
def test_each_attack_checks_its_own_parameters(attack: str, params: dict[str, float], needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        RunConfig(attack=attack, attack_params=params).validate()


def test_the_attack_parameters_are_checked_even_without_malicious_edges() -> None:
    with pytest.raises(ConfigError, match="noise_std"):
        RunConfig(malicious_ratio=0.0, attack_params={"noise_std": math.nan}).validate()


def test_rule_sole_is_refused_for_b_moe_and_a_quorum_rule_for_traditional() -> None:
    with pytest.raises(ConfigError, match="sole"):
        RunConfig(rule="sole").validate()
    with pytest.raises(ConfigError, match="traditional"):
        RunConfig(framework="traditional", rule="fraction").validate()
    RunConfig(framework="traditional", rule="sole").validate()
    RunConfig(framework="traditional").validate()


def test_the_largest_seed_is_one_that_torch_and_the_key_derivation_both_accept() -> None:
    RunConfig(seed=MAX_SEED).validate()
    torch.Generator().manual_seed(MAX_SEED)
    derive_identity(MAX_SEED, "edge-0")
    for seed in (MAX_SEED + 1, 2**64 - 1, 2**64, -1):
        with pytest.raises(ConfigError, match="seed"):
            RunConfig(seed=seed).validate()


def test_a_config_file_with_a_string_where_an_int_belongs_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="num_experts"):
        from_dict({"num_experts": "4"})
    with pytest.raises(ConfigError, match="mapping"):
        from_dict([1, 2])  # type: ignore[arg-type]


def test_whole_numbers_for_float_settings_hash_like_floats() -> None:
    assert from_dict({"lr": 1, "attack_params": {"probability": 1}}).hash() == \
        from_dict({"lr": 1.0, "attack_params": {"probability": 1.0}}).hash()


def test_a_run_too_large_for_this_machine_is_refused_before_anything_is_written(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from bmoe.run import fit
    from bmoe.run.session import Session

    monkeypatch.setattr(fit, "physical_memory", lambda: 2**30)
    config = RunConfig(dataset="synthetic", num_experts=1000, top_k=2, num_edges=1000, hidden=65536, batch_size=32)
    with pytest.raises(ConfigError, match="GiB"):
        Session(config, run_dir=tmp_path / "run")
    assert not (tmp_path / "run").exists()
