"""A generation edge's experts: every (layer, expert) of a language model, loaded once from a store by the CIDs its
genesis names (``gate_cid``: the trusted part, whose manifest is the model's config; ``expert_cids``: one object per
slot ``layer * E + expert``), computed on padded rows (``lm.decoding.rows``) as the validator's copy computes them,
so an honest edge's answer has the bits of the in-process one.

The model file an edge is started with is a JSON object with those two fields (a genesis payload is one):
:func:`write_model_file`, :func:`read_model_file`.

Must not know: HTTP, the ledger, sequences.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from bmoe.lm.config import LMConfig
from bmoe.lm.decoding.rows import stable_expert
from bmoe.lm.model import SwiGLUExpert
from bmoe.lm.optim import weights_of
from bmoe.moe.payloads import PayloadError
from bmoe.net.node_setup import SetupError
from bmoe.protocol.lm.trusted import decode_trusted
from bmoe.storage import BlobStore, StorageError, deserialize_tensors


def write_model_file(path: Path, gate_cid: str, expert_cids: list[str]) -> None:
    """The model an edge serves, by its objects' CIDs."""
    path.write_text(json.dumps({"gate_cid": gate_cid, "expert_cids": expert_cids}, indent=1) + "\n")


def read_model_file(path: Path) -> tuple[str, list[str]]:
    """``(gate_cid, expert_cids)`` of a model file; a one-line :class:`SetupError` for anything else."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise SetupError(f"--model {path}: {exc}") from None
    gate, experts = (data.get("gate_cid"), data.get("expert_cids")) if isinstance(data, dict) else (None, None)
    if not isinstance(gate, str) or not isinstance(experts, list) or not experts \
            or not all(isinstance(cid, str) for cid in experts):
        raise SetupError(f"--model {path}: a JSON object with gate_cid (a CID) and expert_cids (a list of CIDs)")
    return gate, experts


class ServedExperts:
    """The model's experts (``modules[layer][expert]``), an ``ExpertCaller``."""

    def __init__(self, config: LMConfig, modules: list[list[SwiGLUExpert]]) -> None:
        self.config = config
        self.modules = modules
        self.dtype = modules[0][0].w1.weight.dtype

    def expert(self, layer: int, expert: int) -> nn.Module:
        return self.modules[layer][expert]

    def refusal(self, layer: int, calls: dict[int, torch.Tensor]) -> str | None:
        """Why ``calls`` (expert -> rows) of ``layer`` cannot be computed here, or None."""
        config = self.config
        if layer >= config.num_hidden_layers:
            return f"layer {layer}: the model has {config.num_hidden_layers} layers"
        if not calls:
            return "no expert calls"
        for expert, rows in calls.items():
            if expert >= config.num_local_experts:
                return f"expert {expert}: the model has {config.num_local_experts} experts a layer"
            if rows.shape[1] != config.hidden_size or rows.dtype != self.dtype:
                return (f"expert {expert}: rows must be (n, {config.hidden_size}) {self.dtype}, got "
                        f"{tuple(rows.shape)} {rows.dtype}")
            if not bool(torch.isfinite(rows).all()):
                return f"expert {expert}: rows hold NaN or infinite values"
        return None

    def __call__(self, layer: int, routed: dict[int, torch.Tensor]) -> dict[int, torch.Tensor]:
        with torch.no_grad():
            return {expert: stable_expert(self.modules[layer][expert], rows) for expert, rows in routed.items()}


def load_experts(store: BlobStore, gate_cid: str, expert_cids: list[str]) -> ServedExperts:
    """Every expert of the model ``gate_cid`` names, its weights read from ``store`` once; a one-line
    :class:`SetupError` when an object is missing or not what the genesis says."""
    try:
        _, config, _ = decode_trusted(store.get(gate_cid))
        if len(expert_cids) != config.num_slots:
            raise SetupError(f"the model has {config.num_slots} expert slots, the model file names {len(expert_cids)}")
        modules: list[list[SwiGLUExpert]] = []
        for layer in range(config.num_hidden_layers):
            row = []
            for expert in range(config.num_local_experts):
                module = SwiGLUExpert(config.hidden_size, config.intermediate_size)
                state, _ = deserialize_tensors(store.get(expert_cids[layer * config.num_local_experts + expert]))
                module.load_state_dict(weights_of(state))
                row.append(module.eval())
            modules.append(row)
    except (StorageError, PayloadError) as exc:
        raise SetupError(f"cannot load the model's experts: {exc}") from None
    except (RuntimeError, KeyError) as exc:  # load_state_dict: an object that is not this model's expert
        raise SetupError(f"an expert object is not one of this model's experts: {str(exc).splitlines()[0]}") from None
    return ServedExperts(config, modules)
