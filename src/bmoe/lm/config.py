"""The shape of a Mixture-of-Experts language model, in Hugging Face Mixtral's words.

:class:`LMConfig`'s fields carry the names of transformers' ``MixtralConfig`` (``hidden_size``,
``num_local_experts``, ``num_experts_per_tok``...), so a ``config.json`` written by ``bmoe lm export`` is one
that ``MixtralForCausalLM`` reads, and one it wrote is one bmoe reads. Two coefficients are bmoe's own and
travel in the same file (transformers ignores keys it does not know): the router z-loss's (ST-MoE), and whether
the load-balancing loss is averaged per layer (it is; see ``lm/losses.py``). One more is bmoe's: ``router_weighting``,
"unit" for a dense model split into neuron-slice experts (``lm/pretrained/``), whose chosen experts are summed
rather than mixed; it is written only when not Mixtral's "softmax", so a Mixtral model's config.json (and every hash
of one) is what it was, and transformers, which does not know the key, cannot read a "unit" model as it is meant.

Must not know: tensors, training, the protocol.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

ROUTER_WEIGHTINGS = ("softmax", "unit")  # the first is the default (Mixtral's)


class LMConfigError(ValueError):
    """A model shape that cannot be built; the message names the field."""


def _is_number(value: object) -> bool:
    """An int or a float, not a bool (a string from a hand-edited config.json is not compared with 0)."""
    return isinstance(value, int | float) and not isinstance(value, bool)


@dataclass(frozen=True)
class LMConfig:
    """A decoder-only MoE transformer: L blocks of RMSNorm -> attention (RoPE, grouped-query heads as an option)
    -> RMSNorm -> N SwiGLU experts, top-K routed. The defaults are the issue's character-level model: 4 layers,
    d = 128, 8 experts top-2, a 64-token context (nanoGPT's CPU configuration)."""

    vocab_size: int
    hidden_size: int = 128  # d
    intermediate_size: int = 256  # each expert's SwiGLU width (top-2 of 256: the FLOPs of one dense 4d/... FFN)
    num_hidden_layers: int = 4  # L
    num_attention_heads: int = 4
    num_key_value_heads: int = 4  # fewer than the heads: grouped-query attention
    num_local_experts: int = 8  # N, per layer
    num_experts_per_tok: int = 2  # K
    max_position_embeddings: int = 64  # the context (nanoGPT's block size)
    rope_theta: float = 10000.0
    rms_norm_eps: float = 1e-5
    tie_word_embeddings: bool = False
    router_aux_loss_coef: float = 0.01  # Switch load-balancing loss (Fedus et al., 2021)
    router_z_loss_coef: float = 0.001  # router z-loss (Zoph et al., 2022, ST-MoE)
    # how the K chosen experts' outputs are weighted: "softmax" renormalises the router's top-K logits (Mixtral);
    # "unit" sums them with weight 1 (MoEfication: a dense FFN split into neuron slices is the sum of its slices)
    router_weighting: str = "softmax"

    def __post_init__(self) -> None:
        for name in ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
                     "num_key_value_heads", "num_local_experts", "num_experts_per_tok", "max_position_embeddings"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise LMConfigError(f"{name} must be a positive integer, got {value!r}")
        if self.hidden_size % self.num_attention_heads:
            raise LMConfigError(f"hidden_size {self.hidden_size} must be a multiple of num_attention_heads "
                                f"{self.num_attention_heads}")
        if self.head_dim % 2:
            raise LMConfigError(f"the head dimension {self.head_dim} must be even (rotary embeddings rotate pairs)")
        if self.num_attention_heads % self.num_key_value_heads:
            raise LMConfigError(f"num_attention_heads {self.num_attention_heads} must be a multiple of "
                                f"num_key_value_heads {self.num_key_value_heads}")
        if self.num_experts_per_tok > self.num_local_experts:
            raise LMConfigError(f"num_experts_per_tok {self.num_experts_per_tok} must be at most num_local_experts "
                                f"{self.num_local_experts}")
        for name in ("rope_theta", "rms_norm_eps"):
            if not _is_number(getattr(self, name)) or not getattr(self, name) > 0:
                raise LMConfigError(f"{name} must be positive, got {getattr(self, name)!r}")
        if self.router_weighting not in ROUTER_WEIGHTINGS:
            raise LMConfigError(f"router_weighting must be one of {', '.join(ROUTER_WEIGHTINGS)}, "
                                f"got {self.router_weighting!r}")
        for name in ("router_aux_loss_coef", "router_z_loss_coef"):
            if not _is_number(getattr(self, name)) or not getattr(self, name) >= 0:
                raise LMConfigError(f"{name} must be non-negative, got {getattr(self, name)!r}")

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads

    @property
    def num_slots(self) -> int:
        """Experts in the whole model, L x N: a (layer, expert) is one slot of the ledger's expert list."""
        return self.num_hidden_layers * self.num_local_experts

    def slot(self, layer: int, expert: int) -> int:
        """The ledger's expert index of expert ``expert`` of layer ``layer``."""
        return layer * self.num_local_experts + expert

    def layer_expert(self, slot: int) -> tuple[int, int]:
        """The (layer, expert) of a ledger expert index."""
        return divmod(slot, self.num_local_experts)

    def to_hf(self) -> dict[str, Any]:
        """The ``config.json`` of transformers' ``MixtralForCausalLM`` for this model."""
        fields = dataclasses.asdict(self)
        if fields["router_weighting"] == ROUTER_WEIGHTINGS[0]:  # Mixtral's own: left out, as before the field was
            del fields["router_weighting"]
        return {"architectures": ["MixtralForCausalLM"], "model_type": "mixtral", **fields,
                "head_dim": self.head_dim, "hidden_act": "silu", "attention_dropout": 0.0, "sliding_window": None,
                "router_jitter_noise": 0.0, "output_router_logits": False, "torch_dtype": "float32",
                "initializer_range": 0.02, "use_cache": True}

    @classmethod
    def from_hf(cls, config: dict[str, Any]) -> LMConfig:
        """Read a Mixtral ``config.json``; refuse what this model does not implement."""
        if config.get("model_type") not in (None, "mixtral"):
            raise LMConfigError(f"model_type {config.get('model_type')!r} is not mixtral")
        if config.get("hidden_act", "silu") != "silu":
            raise LMConfigError(f"hidden_act {config['hidden_act']!r}: only silu (SwiGLU experts) is implemented")
        window, context = config.get("sliding_window"), config.get("max_position_embeddings", 0)
        if window not in (None, 0) and (not _is_number(window) or not _is_number(context) or window < context):
            raise LMConfigError(f"sliding_window {window!r} is shorter than the context {context!r}: "
                                "sliding-window attention is not implemented")
        head_dim = config.get("head_dim")
        if head_dim not in (None, config.get("hidden_size", 0) // max(1, config.get("num_attention_heads", 1))):
            raise LMConfigError(f"head_dim {head_dim} must be hidden_size / num_attention_heads")
        rope = config.get("rope_parameters") or {}  # transformers 5 keeps rope_theta here, 4.x at the top level
        if not isinstance(rope, dict) or rope.get("rope_type", "default") != "default" or config.get("rope_scaling"):
            raise LMConfigError("scaled rotary embeddings are not implemented (rope_parameters or rope_scaling "
                                "other than the default)")
        names = {field.name for field in dataclasses.fields(cls)}
        if "vocab_size" not in config:
            raise LMConfigError("config.json has no vocab_size")
        fields = {name: config[name] for name in names if name in config}
        if "rope_theta" in rope:
            fields["rope_theta"] = rope["rope_theta"]
        return cls(**fields)
