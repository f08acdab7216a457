"""The language model split as B-MoE splits the classifier: a trusted part on the validators, experts on edges.

The trusted part (the paper's gate, generalised: token embedding, every layer's norms, attention and router, the
final norm and the LM head) is one object in storage, its weights and AdamW moments under Hugging Face Mixtral's
names; the ledger's ``gate_cid`` names it. Its safetensors metadata is the model's manifest: the
:class:`~bmoe.lm.config.LMConfig` (as ``config.json``'s fields) and the tokenizer's CID, so the genesis's
``gate_cid`` alone says what the model is. Every expert (layer l, expert j) is one object of its own, slot
``l * N + j`` of the ledger's expert list, with the expert's own names (``w1.weight``, ``w2.weight``,
``w3.weight``) and moments.

Must not know: the round, edges, the ledger.
"""

from __future__ import annotations

import json

import torch

from bmoe.lm.config import LMConfig
from bmoe.lm.model import MoETransformer
from bmoe.lm.optim import Tensors, weights_of, with_moments
from bmoe.moe.payloads import PayloadError
from bmoe.storage import deserialize_tensors, serialize_tensors

EXPERTS = ".block_sparse_moe.experts."
CONFIG_KEY = "lm_config"
TOKENIZER_KEY = "tokenizer_cid"


def is_expert_parameter(name: str) -> bool:
    return EXPERTS in name


def trusted_weights(model: MoETransformer) -> Tensors:
    """The trusted part's parameters by name (a tied embedding once, as ``model.embed_tokens.weight``)."""
    return {name: p.detach().clone() for name, p in model.named_parameters() if not is_expert_parameter(name)}


def expert_weights(model: MoETransformer, layer: int, expert: int) -> Tensors:
    """Expert ``expert`` of layer ``layer``'s weights, by the expert's own names (``w1.weight``...)."""
    module = model.model.layers[layer].block_sparse_moe.experts[expert]
    return {name: p.detach().clone() for name, p in module.named_parameters()}


def encode_trusted(state: Tensors, config: LMConfig, tokenizer_cid: str) -> bytes:
    """The trusted part's object: weights and moments, the manifest in the metadata."""
    manifest = {CONFIG_KEY: json.dumps(config.to_hf(), sort_keys=True), TOKENIZER_KEY: tokenizer_cid}
    return serialize_tensors(state, manifest)


def decode_trusted(data: bytes) -> tuple[Tensors, LMConfig, str]:
    """The trusted part's state, the model's config and the tokenizer's CID; PayloadError for other bytes."""
    try:
        tensors, metadata = deserialize_tensors(data)
        config = LMConfig.from_hf(json.loads(metadata[CONFIG_KEY]))
        return tensors, config, metadata[TOKENIZER_KEY]
    except PayloadError:
        raise
    except Exception as err:  # any unreadable object is refused the same way
        raise PayloadError(f"trusted part: not a language model's trusted object ({err})") from None


def initial_objects(model: MoETransformer, config: LMConfig, tokenizer_cid: str) -> tuple[bytes, list[bytes]]:
    """The trusted object and every slot's expert object (in slot order) of a freshly built model."""
    trusted = encode_trusted(with_moments(trusted_weights(model)), config, tokenizer_cid)
    experts = [serialize_tensors(with_moments(expert_weights(model, layer, expert)))
               for layer in range(config.num_hidden_layers) for expert in range(config.num_local_experts)]
    return trusted, experts


def load_trusted(model: MoETransformer, state: Tensors) -> None:
    """Put the trusted state's weights into ``model`` (its experts untouched)."""
    weights = weights_of(state)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if not is_expert_parameter(name):
                parameter.copy_(weights[name])


def load_expert(model: MoETransformer, layer: int, expert: int, state: Tensors) -> None:
    """Put an expert object's weights into expert ``expert`` of layer ``layer``."""
    module = model.model.layers[layer].block_sparse_moe.experts[expert]
    module.load_state_dict(weights_of(state))


def assemble(config: LMConfig, trusted: bytes, experts: list[bytes]) -> MoETransformer:
    """The whole model from its objects: what the ledger's CIDs say the model is."""
    model = MoETransformer(config)
    load_trusted(model, decode_trusted(trusted)[0])
    for slot, data in enumerate(experts):
        layer, expert = config.layer_expert(slot)
        load_expert(model, layer, expert, deserialize_tensors(data)[0])
    return model
