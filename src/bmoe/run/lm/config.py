"""A language model's run configuration: the model and its training (``LMSettings``) beside the protocol's.

``LMRunConfig`` pairs :class:`LMSettings` (one field per declaration of ``run/settings/lm.py``) with a
:class:`~bmoe.run.config.RunConfig` holding what a language model's run shares with a classifier's: the framework,
the fleet and its attacks, the comparison, the assignment, stake, the ledger and the seed. The run config's
``num_experts`` and ``top_k`` are the ledger's: L x N slots (a layer is a coordinate of the expert index), K per
token; its ``lr`` is the peak learning rate (the genesis records it; each round's rate follows the schedule).
Its hash, recorded in the genesis, covers both.

Must not know: click, the disk, tensors.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from bmoe.edge.fleet import is_default_fleet
from bmoe.ledger.encoding import canonical_json, sha256_hex
from bmoe.ledger.sealing import DEPLOYED_PBFT_MIN
from bmoe.lm.config import LMConfig, LMConfigError
from bmoe.lm.optim import cosine_lr
from bmoe.run.config import RunConfig, declared_fields
from bmoe.run.config_checks import ConfigError, check_value
from bmoe.run.settings.lm import LM_SETTINGS, LM_SETTINGS_BY_NAME

LM_CONFIG_FILE = "lm.json"  # a language model's run directory: these settings, as LMRunConfig.to_dict writes them

# The RunConfig settings ``bmoe lm train`` shows (under ``bmoe train``'s flags): what the two kinds of run share
PROTOCOL_SETTINGS = ("seed", "framework", "num_edges", "malicious_ratio", "attack", "attack_params", "collude", "fleet",
                     "rule", "rule_fraction", "assignment", "replicas", "trusted_replicas", "trust_after", "stake",
                     "reward", "slash", "min_stake", "difficulty", "consensus", "validators", "byzantine_validators",
                     "validator_attack", "message_delay", "share_compute", "threads")
# RunConfig settings a language model's run does not use: refused when given (they would do nothing)
CLASSIFIER_ONLY = ("dataset", "data_dir", "limit_train", "limit_test", "expert", "hidden", "batch_size", "balance",
                   "rounds", "eval_every", "num_experts", "top_k", "lr")


@dataclass(frozen=True)
@declared_fields(LM_SETTINGS)
class LMSettings:
    """The model's shape, tokenizer and training schedule; defaults and reasons in ``run/settings/lm.py``."""

    def validate(self) -> LMSettings:
        for field in dataclasses.fields(self):
            check_value(field.name, getattr(self, field.name), LM_SETTINGS_BY_NAME)
        for setting in LM_SETTINGS:
            if setting.choices and getattr(self, setting.name) not in setting.choices:
                raise ConfigError(f"{setting.name} must be one of {', '.join(setting.choices)}, "
                                  f"got {getattr(self, setting.name)!r}")
        if self.min_lr > self.max_lr:  # type: ignore[attr-defined]
            raise ConfigError(f"min_lr {self.min_lr} must be at most the peak lr {self.max_lr}")  # type: ignore[attr-defined]
        return self

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def lr(self, step: int) -> float:
        """The learning rate of round ``step``: nanoGPT's warmup and cosine decay."""
        s: Any = self
        return cosine_lr(step, s.max_lr, s.warmup, s.decay_steps, s.min_lr)

    def model_config(self, vocab_size: int) -> LMConfig:
        """The model these settings describe, for a tokenizer of ``vocab_size``."""
        s: Any = self
        try:
            return LMConfig(vocab_size=vocab_size, hidden_size=s.hidden_size, intermediate_size=s.intermediate_size,
                            num_hidden_layers=s.layers, num_attention_heads=s.heads, num_key_value_heads=s.kv_heads,
                            num_local_experts=s.lm_experts, num_experts_per_tok=s.lm_top_k,
                            max_position_embeddings=s.context, tie_word_embeddings=s.tie_embeddings,
                            router_aux_loss_coef=s.aux_loss, router_z_loss_coef=s.z_loss)
        except LMConfigError as err:
            raise ConfigError(str(err)) from None


@dataclass(frozen=True)
class LMRunConfig:
    """A language model's run: its own settings and the protocol's (``run``)."""

    lm: LMSettings
    run: RunConfig

    @staticmethod
    def build(lm: dict[str, Any], run: dict[str, Any]) -> LMRunConfig:
        """Validated settings from ``lm`` (LM settings by name) and ``run`` (RunConfig settings by name)."""
        unknown = sorted(set(lm) - set(LM_SETTINGS_BY_NAME))
        if unknown:
            raise ConfigError(f"unknown language-model setting(s): {', '.join(unknown)}")
        refused = sorted(set(run) & set(CLASSIFIER_ONLY))
        if refused:
            raise ConfigError(f"setting(s) of a classifier's run, not a language model's: {', '.join(refused)}")
        try:
            settings = LMSettings(**lm).validate()
        except TypeError as err:  # a value of no setting's type (the checks name the setting)
            raise ConfigError(f"language-model settings: {err}") from None
        s: Any = settings
        if s.lm_top_k > s.lm_experts:
            raise ConfigError(f"top-k {s.lm_top_k} must be at most the experts per layer {s.lm_experts}")
        run_config = RunConfig(**run, num_experts=s.layers * s.lm_experts, top_k=s.lm_top_k, lr=s.max_lr).validate()
        _check_validators(run_config)
        return LMRunConfig(settings, run_config)

    def to_dict(self) -> dict[str, Any]:
        return {"lm": self.lm.to_dict(), "run": {k: v for k, v in self.run.to_dict().items()
                                                 if k not in CLASSIFIER_ONLY}}

    @staticmethod
    def from_dict(data: Any) -> LMRunConfig:
        if not isinstance(data, dict) or set(data) != {"lm", "run"} or not all(
                isinstance(data[table], dict) for table in ("lm", "run")):
            raise ConfigError("a language model's config holds exactly the tables 'lm' and 'run', each a mapping of "
                              "settings")
        unknown = sorted(str(key) for key in set(data["run"]) - {f.name for f in dataclasses.fields(RunConfig)})
        if unknown:
            raise ConfigError(f"unknown setting(s) in 'run': {', '.join(unknown)}")
        return LMRunConfig.build(dict(data["lm"]), dict(data["run"]))

    def hash(self) -> str:
        """SHA-256 over the recorded settings of both parts (execution settings left out)."""
        recorded = {k: v for k, v in self.lm.to_dict().items() if LM_SETTINGS_BY_NAME[k].recorded}
        return sha256_hex(canonical_json({"lm": recorded, "run": self.run.hash()}))


def _check_validators(run: RunConfig) -> None:
    """A language model's PBFT validators are n >= 3f + 1 with f >= 1 (``DEPLOYED_PBFT_MIN``), each replaying every
    proposed block on the default numerics (the replay's, ``protocol/lm/replay.py``)."""
    if run.consensus == "pbft" and run.validators < DEPLOYED_PBFT_MIN:
        raise ConfigError(f"--consensus pbft needs --validators {DEPLOYED_PBFT_MIN} or more (n >= 3f + 1 with f >= 1), "
                          f"got {run.validators}")
    if not is_default_fleet(run.validator_fleet):
        raise ConfigError("a language model's validators replay every block on the default numerics: drop "
                          "validator_fleet")
