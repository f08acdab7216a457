"""The run configuration: one frozen dataclass whose fields are the declared settings, unknown keys rejected.

Owns ``RunConfig`` (its fields are read off ``run/settings/``, one declaration per setting), what the genesis
records of it (specs of the assignment, economics, comparison and calibration in force), its hash, and
``from_dict``. Must not know: click, the disk (``run_dir.py``), the dataset (``fit.py``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from bmoe.edge.fleet import parse_fleet
from bmoe.ledger.economics import Economics
from bmoe.ledger.encoding import canonical_json, sha256_hex
from bmoe.run.config_checks import ConfigError, check_settings
from bmoe.run.settings.consensus import CONSENSUS_ENGINES, VALIDATOR_ATTACKS
from bmoe.run.settings.registry import DECLARED, EXECUTION_SETTINGS, SETTINGS
from bmoe.run.settings.setting import PYTHON_TYPES, Setting
from bmoe.verify.assignment import Adaptive, Sampled
from bmoe.verify.bound_window import Calibrated, bound_in_force
from bmoe.verify.comparison import Tolerance, make_comparison
from bmoe.verify.framework import framework_of

__all__ = ["CONSENSUS_ENGINES", "EXECUTION_SETTINGS", "VALIDATOR_ATTACKS", "ConfigError", "RunConfig",
           "from_dict"]

T = TypeVar("T")


def declared_fields(declarations: tuple[Setting, ...]) -> Callable[[type[T]], type[T]]:
    """A decorator giving a class one field per setting of ``declarations``, in their order, with its default."""
    def give(cls: type[T]) -> type[T]:
        annotations: dict[str, Any] = {}
        for setting in declarations:
            kind = PYTHON_TYPES[setting.kind]
            annotations[setting.name] = kind | None if setting.nullable else kind
            setattr(cls, setting.name, _default(setting))
        cls.__annotations__ = annotations
        return cls
    return give


def _default(setting: Setting) -> Any:
    if isinstance(setting.default, dict):  # a mutable default: each config gets its own copy
        default = dict(setting.default)
        return field(default_factory=lambda: dict(default))
    return setting.default


@dataclass(frozen=True)
@declared_fields(DECLARED)
class RunConfig:
    """Every run setting, one field per declaration in ``run/settings/`` (their defaults and reasons are there).

    Its hash is recorded in the genesis transaction and in the run directory, so a chain always says which
    settings produced it.
    """

    def validate(self) -> RunConfig:
        """Check every setting (type, finite, range, sanity limits) and how they combine; see config_checks."""
        check_settings(self)
        return self

    @property
    def malicious_edges(self) -> int:
        """How many edges are malicious: round(ratio x edges in play), the last ones."""
        return int(self.malicious_ratio * self.edges_in_play + 0.5)

    @property
    def edges_in_play(self) -> int:
        return framework_of(self.framework).edges_in_play(self.num_experts, self.num_edges)

    @property
    def edge_profiles(self) -> tuple[str, ...]:
        """Each edge's numeric profile name, in edge order."""
        return parse_fleet(self.fleet, self.edges_in_play)

    @property
    def validator_profiles(self) -> tuple[str, ...]:
        """Each validator's numeric profile, in validator order (validator-0 first)."""
        return parse_fleet(self.validator_fleet, self.validators)

    def assignment_spec(self) -> str | dict[str, Any]:
        """The assignment policy, as the genesis records it: traditional hosts expert i on edge i."""
        fixed = framework_of(self.framework).assignment
        if fixed is not None:
            return fixed
        if self.assignment == "adaptive":
            return Adaptive(self.replicas, self.trusted_replicas, self.trust_after).spec()
        return Sampled(self.replicas).spec() if self.assignment == "sampled" else "all"

    def economics_spec(self, edges: list[str]) -> dict[str, Any] | None:
        """Stake, rewards and slashing as the genesis records them for ``edges``, or None without a stake."""
        if not self.stake:
            return None
        return Economics({edge: self.stake for edge in edges}, self.reward, self.slash, self.min_stake).spec()

    def comparison_spec(self) -> str | dict[str, Any]:
        """The comparison in force, as the genesis records it (its bounds when it has any)."""
        if self.comparison == "tolerance":
            return Tolerance(result_bound=self.result_bound, update_bound=self.update_bound).spec()
        return make_comparison(self.comparison).spec()

    def calibration(self) -> Calibrated | None:
        """The calibration the bounds are checked against, as the genesis records it, or None."""
        if self.calibration_cid is None or self.calibrated_result_max is None or self.calibrated_update_max is None:
            return None
        return Calibrated(self.calibration_cid, self.calibrated_result_max, self.calibrated_update_max)

    def bound_genesis(self) -> dict[str, Any]:
        """What the genesis records of the bounds: the comparison, and the calibration when there is one."""
        recorded: dict[str, Any] = {"comparison": self.comparison_spec()}
        calibration = self.calibration()
        if calibration is not None:  # only a run whose bounds were checked against a calibration records these
            recorded["calibration"] = calibration.spec()
            if self.force_bound:
                recorded["force_bound"] = True
        return recorded

    def bound_in_force(self) -> str | None:
        """The bounds in force and their origin, in words (None without a tolerance comparison)."""
        return bound_in_force(self.bound_genesis())

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def hash(self) -> str:
        """SHA-256 of the settings that shape the ledger: all but :data:`EXECUTION_SETTINGS`, and each left out
        for the configs its declaration says (``omit_when``: a setting hashes as before it existed when unused)."""
        recorded = {key: value for key, value in self.to_dict().items() if SETTINGS[key].hashed(self)}
        return sha256_hex(canonical_json(recorded))

    def replace(self, **changes: Any) -> RunConfig:
        return from_dict({**self.to_dict(), **changes})


def from_dict(data: Mapping[str, Any]) -> RunConfig:
    """Build a validated config from a mapping (a run's config.json), rejecting unknown keys by name.

    Whole numbers given for float settings become floats, so ``"lr": 1`` and ``"lr": 1.0`` hash alike.
    """
    if not isinstance(data, Mapping):
        raise ConfigError(f"settings must be a mapping of setting names to values, got {type(data).__name__}")
    known = {f.name for f in dataclasses.fields(RunConfig)}
    unknown = sorted(str(key) for key in set(data) - known)
    if unknown:
        raise ConfigError(f"unknown setting(s): {', '.join(unknown)}")
    return RunConfig(**{key: _as_float(key, value) for key, value in data.items()}).validate()


def _as_float(key: str, value: Any) -> Any:
    kind = SETTINGS[key].kind
    if kind == "float" and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if kind == "params" and isinstance(value, dict):
        return {k: float(v) if isinstance(v, int) and not isinstance(v, bool) else v for k, v in value.items()}
    return value
