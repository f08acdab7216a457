"""Which values each run setting may take, checked as a whole before anything runs.

Owns the checks of every :class:`~bmoe.run.config.RunConfig` field against its declaration
(``run/settings/``: type, range, sanity limit, choices), and the rules that tie settings together (K <= N,
which acceptance rule a framework uses, PBFT validators). Every failure is a one-line :class:`ConfigError`
naming the setting.

Must not know: the dataset (``fit.py`` checks the settings against it) or the disk (``run_dir.py``).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from bmoe.ledger.sealing import validators_supported
from bmoe.moe.presets import INTEGER_PRESETS
from bmoe.run.settings.registry import DECLARED, SETTINGS
from bmoe.run.settings.setting import Setting
from bmoe.verify.bound_window import window_refusal
from bmoe.verify.framework import framework_of

if TYPE_CHECKING:
    from bmoe.run.config import RunConfig


class ConfigError(ValueError):
    """A setting is out of range or unknown; the message names it."""


def check_value(name: str, value: Any, declared: Mapping[str, Setting] = SETTINGS) -> None:
    """Refuse a value of the wrong type, not finite, or outside the setting's range (``declared``: the settings
    by name, a run's by default)."""
    setting = declared[name]
    title = f"{name} ({setting.label})" if setting.label else name
    if value is None and setting.nullable:
        return
    if setting.kind == "params":
        _check_params(value)
        return
    if setting.kind == "bool":
        if not isinstance(value, bool):
            raise ConfigError(f"{title} must be true or false, got {value!r}")
        return
    if setting.kind == "str":
        if not isinstance(value, str):
            raise ConfigError(f"{title} must be a string, got {value!r}")
        return
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{title} must be {'an integer' if setting.kind == 'int' else 'a number'}, got {value!r}")
    if setting.kind == "int" and not isinstance(value, int):
        raise ConfigError(f"{title} must be an integer, got {value!r}")
    if isinstance(value, float) and not math.isfinite(value):  # an int is exact, however large: range-checked
        raise ConfigError(f"{title} must be a finite number, got {value!r}")
    low_ok = setting.low is None or (value > setting.low if setting.low_open else value >= setting.low)
    high_ok = setting.high is None or (value < setting.high if setting.high_open else value <= setting.high)
    if not (low_ok and high_ok):
        raise ConfigError(f"{title} must be in {setting.interval()}, got {_shown(value)}")


def _shown(value: object) -> str:
    """``value`` for a one-line message: a 400-digit number is shown by its size, not spelled out."""
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:12]}... ({len(text)} characters)"


def _check_params(params: Any) -> None:
    if not isinstance(params, dict):
        raise ConfigError(f"attack_params must be a mapping of NAME to number, got {params!r}")
    for key, value in params.items():
        if not isinstance(key, str) or isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"attack_params must map names to numbers, got {key!r}: {value!r}")
        if isinstance(value, int) and abs(value) > 2**53:  # beyond a float's exact integers
            raise ConfigError(f"attack_params {key} must be a finite number of at most 2**53, got {_shown(value)}")
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"attack_params {key} must be a finite number, got {value!r}")


def check_settings(config: RunConfig) -> None:
    """Every field on its own (type, finiteness, range), then the rules that tie fields together."""
    for field in dataclasses.fields(config):
        check_value(field.name, getattr(config, field.name))
    _check_choices(config)
    _check_together(config)
    _check_attack(config)
    _check_fleet(config)
    _check_bound_window(config)


def _check_choices(config: RunConfig) -> None:
    for setting in DECLARED:
        if setting.choices and getattr(config, setting.name) not in setting.choices:
            raise ConfigError(f"{setting.name} must be one of {', '.join(setting.choices)}, "
                              f"got {getattr(config, setting.name)!r}")


def _check_ethereum(config: RunConfig) -> None:
    if not framework_of(config.framework).keeps_ledger:
        raise ConfigError("--ledger ethereum seals B-MoE's ledger; traditional keeps none")
    if not config.rpc_url or not config.rpc_url.startswith(("http://", "https://")):
        raise ConfigError(f"--ledger ethereum needs --rpc-url, an http:// or https:// Ethereum JSON-RPC URL, got "
                          f"{config.rpc_url!r}")
    if not validators_supported(config.consensus, config.validators):
        raise ConfigError("--ledger ethereum runs one validator, whose account seals every block through the "
                          "contract (in process, or as the one validator of bmoe cluster up --ledger ethereum); "
                          "several validators on one contract are not supported")


def _check_together(config: RunConfig) -> None:
    n, k, m = config.num_experts, config.top_k, config.num_edges
    if k > n:
        raise ConfigError(f"K={k} must be in [1, N={n}]")
    if framework_of(config.framework).verifies and config.rule == "sole":
        raise ConfigError("rule 'sole' accepts one edge's result unverified; B-MoE compares every edge's "
                          "result: use majority, fraction or plurality")
    fixed_rule = framework_of(config.framework).rule
    if fixed_rule is not None and config.rule not in ("majority", fixed_rule):
        raise ConfigError(f"rule {config.rule!r} does not apply to traditional, which accepts each expert's "
                          "one result unverified (rule sole)")
    if framework_of(config.framework).one_edge_per_expert and m < n:
        raise ConfigError(f"traditional needs one edge per expert: M={m} < N={n}")
    if config.consensus == "ethereum":
        _check_ethereum(config)
    if not validators_supported(config.consensus, config.validators):
        raise ConfigError("several validators need --consensus pbft")
    if config.assignment != "all" and framework_of(config.framework).assignment is not None:
        raise ConfigError(f"assignment {config.assignment} applies to B-MoE; traditional hosts each expert on one edge")
    if config.assignment != "all" and config.replicas > m:
        raise ConfigError(f"sampled replicas r = {config.replicas} must be at most M = {m} edges")
    if config.assignment == "adaptive" and config.trusted_replicas > config.replicas:
        raise ConfigError(f"adaptive: trusted replicas ({config.trusted_replicas}) must be at most the replicas "
                          f"r = {config.replicas}")
    if config.stake:
        _check_economics(config)
    if config.comparison == "integer" and config.expert not in INTEGER_PRESETS:
        raise ConfigError(f"comparison integer needs an expert computed in integers ({', '.join(INTEGER_PRESETS)}); "
                          f"expert {config.expert!r} computes in floating point and cannot be quantised by this "
                          "setting: use --expert mlp-int, or --comparison tolerance for float experts")
    if config.expert in INTEGER_PRESETS:
        _check_fixed_point_lr(config)
    if config.ipfs_api is not None and not config.ipfs_api.startswith(("http://", "https://")):
        raise ConfigError(f"ipfs_api (IPFS HTTP RPC URL) must be an http:// or https:// URL, got {config.ipfs_api!r}")
    if config.byzantine_validators and config.byzantine_validators >= config.validators:
        raise ConfigError(f"byzantine validators ({config.byzantine_validators}) must be fewer than the "
                          f"validators ({config.validators})")


def _check_fixed_point_lr(config: RunConfig) -> None:
    from bmoe.moe.fixed_point import quantize_lr

    try:
        quantize_lr(config.lr)
    except ValueError:
        raise ConfigError(f"lr {config.lr} cannot be expert {config.expert}'s learning rate: its fixed-point updates "
                          "take one in (2**-25, 1024)") from None


def _check_economics(config: RunConfig) -> None:
    if not framework_of(config.framework).verifies:
        raise ConfigError("stake applies to B-MoE, whose answers are verified; traditional accepts each one unverified")
    if config.slash > config.stake:
        raise ConfigError(f"a slash of {config.slash} is larger than the stake of {config.stake}")
    if config.min_stake > config.stake:
        raise ConfigError(f"the minimum stake {config.min_stake} is above the stake of {config.stake}: "
                          "no edge could ever be assigned")


def _check_fleet(config: RunConfig) -> None:
    from bmoe.edge.profiles import FleetError, get_profile, parse_fleet

    try:
        parse_fleet(config.fleet, config.edges_in_play)
    except FleetError as err:
        raise ConfigError(str(err)) from None
    try:
        validators = parse_fleet(config.validator_fleet, config.validators)
    except FleetError as err:
        raise ConfigError(f"validator fleet (--validator-fleet, one profile per validator): {err}") from None
    for name in validators:
        if not get_profile(name).in_process:
            raise ConfigError(f"validator fleet: profile {name} sets environment variables before torch loads, "
                              "which in-process validators cannot do")


def _check_attack(config: RunConfig) -> None:
    from bmoe.edge.behaviour import make_behaviour

    try:
        make_behaviour(config.attack, **config.attack_params)
    except (ValueError, TypeError) as err:
        raise ConfigError(str(err)) from None


def _check_bound_window(config: RunConfig) -> None:
    """A calibration (all three of its settings) bounds a tolerance comparison, whose bounds must sit in its
    window unless ``force_bound``; ``force_bound`` needs a calibration to override."""
    given = [config.calibration_cid is not None, config.calibrated_result_max is not None,
             config.calibrated_update_max is not None]
    if any(given) and not all(given):
        raise ConfigError("calibration_cid, calibrated_result_max and calibrated_update_max come together, from "
                          "--bound-from calibration.json")
    calibrated = config.calibration()
    if calibrated is None:
        if config.force_bound:
            raise ConfigError("--force-bound overrides the check of the bounds against a calibration, and there is "
                              "none: give --bound-from calibration.json")
        return
    from bmoe.storage import InvalidCID, parse_cid

    try:
        parse_cid(calibrated.cid)
    except InvalidCID:
        raise ConfigError(f"calibration_cid must be a CID, got {_shown(calibrated.cid)}") from None
    if config.comparison != "tolerance":
        raise ConfigError(f"a calibration bounds --comparison tolerance, and the comparison is {config.comparison}")
    refusal = window_refusal(config.result_bound, config.update_bound, calibrated)
    if refusal is not None and not config.force_bound:
        raise ConfigError(f"{refusal}; give --force-bound to run with it anyway (the genesis records that)")
