"""The model a server serves: its MoE, tokenizer, chat template, end-of-sequence token, and identity (what a receipt
names it by), loaded from a pretrained model's name or a ``bmoe lm train`` run directory.

The identity's ``weights_cid`` is the CID of the model's weights as one canonical safetensors file (the
``model.safetensors`` that ``bmoe lm export`` writes for it: ``lm/checkpoint.py``), computed once at load: the same
weights always give the same CID, whoever computes it. A run's identity adds its trusted object's CID, the SHA-256
of its experts' CIDs (one per line, in slot order) and its chain's height. A model without a chat template of its
own (bmoe's trained models) is given :data:`PLAIN_CHAT_TEMPLATE`: one ``role: content`` line per message, then
``assistant:``.

Must not know: HTTP, the API's shapes, the engine.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bmoe.lm.checkpoint import METADATA, checkpoint_tensors
from bmoe.lm.model import MoETransformer
from bmoe.lm.pretrained.chat_template import ChatTemplate
from bmoe.lm.tokenizer import Tokenizer
from bmoe.storage import cid_of
from bmoe.storage.tensors import serialize_tensors

PLAIN_CHAT_TEMPLATE = ("{% for message in messages %}{{ message['role'] }}: {{ message['content'] }}\n{% endfor %}"
                       "{% if add_generation_prompt %}assistant:{% endif %}")


def weights_cid(model: MoETransformer) -> str:
    """The CID of ``model``'s canonical checkpoint weights (``model.safetensors``)."""
    return cid_of(serialize_tensors(checkpoint_tensors(model), METADATA))


@dataclass(frozen=True)
class ServedModel:
    """A model ready to serve, and what a receipt says of it."""

    name: str  # the API's model id
    model: MoETransformer
    tokenizer: Tokenizer
    chat_template: ChatTemplate
    eos_token_id: int | None  # generating it ends a request ("stop")
    identity: dict[str, Any]  # name, weights_cid, source

    @property
    def context(self) -> int:
        return self.model.config.max_position_embeddings

    def chat_prompt(self, messages: list[dict[str, str]]) -> list[int]:
        """The token ids of ``messages`` rendered by the chat template, the assistant's turn opened."""
        return self.tokenizer.encode(self.chat_template.render(messages, add_generation_prompt=True))


def served_pretrained(name: str, experts: int, served_name: str | None = None) -> ServedModel:
    """The pretrained model ``name`` as an MoE of ``experts`` slices a layer, all active (DataError if unknown),
    served as ``served_name`` (default: ``name``)."""
    from bmoe.lm.pretrained import load_pretrained
    from bmoe.lm.pretrained.catalogue import pretrained_source

    source = pretrained_source(name)
    loaded = load_pretrained(name, experts)
    config = loaded.model.config
    served_name = served_name or name
    identity = {"name": served_name, "weights_cid": weights_cid(loaded.model),
                "source": {"pretrained": name, "gguf_sha256": source.gguf_sha256, "experts": config.num_local_experts,
                           "experts_per_token": config.num_experts_per_tok}}
    eos = loaded.stop_token_ids[0] if loaded.stop_token_ids else None
    return ServedModel(served_name, loaded.model, loaded.tokenizer, loaded.chat_template, eos, identity)


def served_run(run_dir: Path, name: str | None = None) -> ServedModel:
    """The model a ``bmoe lm train`` run's ledger holds (ConfigError / StorageError naming what is missing), served
    as ``name`` (default: the directory's name)."""
    from bmoe.run.lm.artifacts import open_lm_run

    run = open_lm_run(run_dir)
    served_name = name or run_dir.resolve().name
    experts = hashlib.sha256("\n".join(run.expert_cids).encode()).hexdigest()
    identity = {"name": served_name, "weights_cid": weights_cid(run.model),
                "source": {"run": {"trusted_cid": run.gate_cid, "experts": len(run.expert_cids),
                                   "expert_cids_sha256": experts, "chain_height": run.height}}}
    return ServedModel(served_name, run.model, run.tokenizer, ChatTemplate(PLAIN_CHAT_TEMPLATE), None, identity)
