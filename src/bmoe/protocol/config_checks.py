"""Which values each run setting may take: one table, checked as a whole before anything runs.

Owns the type and range of every :class:`~bmoe.protocol.config.RunConfig` field, the sanity limits
on sizes (so a typo cannot ask for a million experts and hang or exhaust memory), and the rules that
tie settings together (K <= N, which acceptance rule a framework uses, PBFT validators). Every
failure is a one-line :class:`ConfigError` naming the setting.

Must not know: the dataset (``fit.py`` checks the settings against it) or the disk (``run_dir.py``).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bmoe.ledger.economics import MAX_UNITS
from bmoe.ledger.sealing import validators_supported
from bmoe.moe.presets import INTEGER_PRESETS, PRESETS
from bmoe.verify.acceptance import RULES
from bmoe.verify.bound_window import MAX_BOUND, MAX_PER_SAMPLE, window_refusal
from bmoe.verify.comparison import COMPARISONS
from bmoe.verify.framework import FRAMEWORKS, framework_of

if TYPE_CHECKING:
    from bmoe.protocol.config import RunConfig

CONSENSUS_ENGINES = ("pow", "pbft", "ethereum")  # ethereum: blocks sealed by the run's contract (--ledger)
VALIDATOR_ATTACKS = ("tamper", "silent", "equivocate", "garbage", "replay")
STORES = ("directory", "ipfs")  # where a run directory's objects live
EXPERT_PRESETS = PRESETS  # mlp, cnn, mlp-int (moe/presets.py)

# Sanity limits. The paper runs N = M = 10, K = 3, 256 hidden units, batches of 1000, 1500 rounds;
# the limits leave two orders of magnitude of room and stop typos that would hang or exhaust memory
# (the memory a run needs on its dataset is estimated separately, in fit.py).
MAX_PARTIES = 1024  # N experts, M edges: each edge holds a key and computes every activated expert
MAX_VALIDATORS = 100  # PBFT exchanges n^2 messages per block
MAX_HIDDEN = 65_536
MAX_BATCH = 1_000_000
MAX_ROUNDS = 10_000_000
MAX_SAMPLES = 1_000_000_000  # limit_train / limit_test
MAX_THREADS = 1024
MAX_STEP = 1000.0  # lr and balance: beyond this SGD only produces inf/NaN
MAX_DELAY_S = 60.0  # PBFT's simulated one-way delay; its timers are multiples of it
MAX_RUN_DIFFICULTY = 24  # 2^24 = 16.7 M hashes a block: 10-45 s in Python; 32 would be hours per block
MAX_SEED = 2**63 - 1  # keys encode the seed as a signed 64-bit integer (ledger.keys.derive_identity)


class ConfigError(ValueError):
    """A setting is out of range or unknown; the message names it."""


@dataclass(frozen=True)
class Setting:
    """What one field holds: its kind, an optional numeric range, and whether None is allowed."""

    kind: str  # "int" | "float" | "bool" | "str" | "params"
    low: float | None = None
    high: float | None = None
    low_open: bool = False  # (low, high] instead of [low, high]
    high_open: bool = False  # [low, high) instead of [low, high]
    nullable: bool = False
    label: str = ""  # how the docs call it, e.g. "experts N"

    def interval(self) -> str:
        return f"{'(' if self.low_open else '['}{_num(self.low)}, {_num(self.high)}{')' if self.high_open else ']'}"


def _num(value: float | None) -> str:
    return "-inf" if value is None else f"{value:g}" if isinstance(value, float) else f"{value}"


SETTINGS: dict[str, Setting] = {
    "framework": Setting("str"),
    "dataset": Setting("str"),
    "data_dir": Setting("str", nullable=True),
    "limit_train": Setting("int", 1, MAX_SAMPLES, nullable=True),
    "limit_test": Setting("int", 1, MAX_SAMPLES, nullable=True),
    "num_experts": Setting("int", 1, MAX_PARTIES, label="experts N"),
    "top_k": Setting("int", 1, MAX_PARTIES, label="K"),
    "num_edges": Setting("int", 1, MAX_PARTIES, label="edges M"),
    "expert": Setting("str"),
    "hidden": Setting("int", 1, MAX_HIDDEN, label="hidden units"),
    "rounds": Setting("int", 1, MAX_ROUNDS),
    "batch_size": Setting("int", 1, MAX_BATCH, label="batch size"),
    "lr": Setting("float", 0.0, MAX_STEP, low_open=True, label="learning rate"),
    "balance": Setting("float", 0.0, MAX_STEP, label="balance weight"),
    "malicious_ratio": Setting("float", 0.0, 1.0, high_open=True, label="malicious ratio"),
    "attack": Setting("str"),
    "attack_params": Setting("params"),
    "collude": Setting("bool"),
    "assignment": Setting("str"),
    "replicas": Setting("int", 1, MAX_PARTIES, label="sampled replicas r"),
    "trusted_replicas": Setting("int", 2, MAX_PARTIES, label="adaptive replicas among trusted edges"),
    "trust_after": Setting("int", 1, MAX_ROUNDS * MAX_PARTIES, label="accepted answers that earn trust"),
    "rule": Setting("str"),
    "rule_fraction": Setting("float", 0.0, 1.0, low_open=True, label="rule fraction"),
    "comparison": Setting("str"),
    "result_bound": Setting("float", 0.0, MAX_BOUND, low_open=True, label="tolerance bound of results"),
    "update_bound": Setting("float", 0.0, MAX_BOUND, low_open=True, label="tolerance bound of updates"),
    "calibration_cid": Setting("str", nullable=True, label="the calibration's CID"),
    "calibrated_result_max": Setting("float", 0.0, MAX_PER_SAMPLE, nullable=True,
                                     label="calibrated honest maximum of results"),
    "calibrated_update_max": Setting("float", 0.0, MAX_BOUND, nullable=True,
                                     label="calibrated honest maximum of updates"),
    "force_bound": Setting("bool"),
    "difficulty": Setting("int", 0, MAX_RUN_DIFFICULTY,
                          label="PoW difficulty bits, each doubling the 2^d hashes a block needs"),
    "consensus": Setting("str"),
    "validators": Setting("int", 1, MAX_VALIDATORS),
    "byzantine_validators": Setting("int", 0, MAX_VALIDATORS),
    "validator_attack": Setting("str"),
    "message_delay": Setting("float", 0.0, MAX_DELAY_S, low_open=True, label="message delay (s)"),
    "share_compute": Setting("bool"),
    "eval_every": Setting("int", 1, MAX_ROUNDS),
    "stall_after": Setting("int", 0, MAX_ROUNDS, label="tasks without quorum before a stall"),
    "seed": Setting("int", 0, MAX_SEED),
    "threads": Setting("int", 1, MAX_THREADS),
    "fleet": Setting("str", label="edge numeric profiles"),
    "validator_fleet": Setting("str", label="validator numeric profiles"),
    "stake": Setting("int", 0, MAX_UNITS, label="stake per edge"),
    "reward": Setting("int", 0, MAX_UNITS, label="reward per accepted answer"),
    "slash": Setting("int", 0, MAX_UNITS, label="slash per proven dissent"),
    "min_stake": Setting("int", 0, MAX_UNITS, label="minimum stake to be assigned"),
    "store": Setting("str"),
    "ipfs_api": Setting("str", nullable=True, label="IPFS HTTP RPC URL"),
    "rpc_url": Setting("str", nullable=True, label="Ethereum JSON-RPC URL"),
    "eth_key": Setting("str", nullable=True, label="Ethereum key file"),
}


def check_value(name: str, value: Any) -> None:
    """Refuse a value of the wrong type, not finite, or outside the setting's range."""
    setting = SETTINGS[name]
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
    choices = [("framework", FRAMEWORKS), ("rule", RULES), ("consensus", CONSENSUS_ENGINES),
               ("validator_attack", VALIDATOR_ATTACKS), ("expert", EXPERT_PRESETS), ("comparison", tuple(COMPARISONS)),
               ("store", STORES)]
    for name, allowed in choices:
        if getattr(config, name) not in allowed:
            raise ConfigError(f"{name} must be one of {', '.join(allowed)}, "
                              f"got {getattr(config, name)!r}")


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
    if config.assignment not in ("all", "sampled", "adaptive"):
        raise ConfigError(f"assignment must be one of all, sampled, adaptive, got {config.assignment!r}")
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
