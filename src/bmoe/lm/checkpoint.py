"""Hugging Face checkpoints of the MoE language model: a directory that ``MixtralForCausalLM`` loads.

A checkpoint is a directory holding

- ``config.json``: :meth:`LMConfig.to_hf`, written with sorted keys and an indent of 2, then a newline;
- ``model.safetensors``: every parameter under its Mixtral name (``model.layers.{i}.block_sparse_moe.experts.
  {j}.w1.weight``..., the per-expert layout of the hub, ``lm/hf_layout.py``), float32, metadata
  ``{"format": "pt"}``, in bmoe's canonical safetensors layout (``storage/tensors.py``: sorted names, no
  hash-map order), so the same model always gives the same bytes. With tied embeddings ``lm_head.weight`` is
  left out, as transformers leaves it out.

:func:`save_pretrained` writes both files or neither: a new directory is built beside its target and renamed
onto it; into an existing directory each file goes to a temporary file first, and the two are renamed into
place only once both are written. :func:`load_pretrained` reads a bmoe checkpoint or one transformers wrote
(per-expert or fused expert tensors, any floating dtype, read into float32), and refuses anything else with a
:class:`CheckpointError` of one line that names the problem. Save, load and save again gives the same bytes.

Must not know: training, the protocol, the command line.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
from pathlib import Path

import torch

from bmoe.fileio import open_regular_file, read_regular_text
from bmoe.lm.config import LMConfig, LMConfigError
from bmoe.lm.hf_layout import LayoutError, to_per_expert
from bmoe.lm.model import MoETransformer
from bmoe.storage.errors import CorruptObject
from bmoe.storage.tensors import deserialize_tensors, serialize_tensors

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
SHARD_INDEX_FILE = "model.safetensors.index.json"  # transformers' sharded checkpoints (over 50 GB by default)
METADATA = {"format": "pt"}  # what transformers writes and expects: the tensors are PyTorch's
TIED_HEAD, EMBEDDING = "lm_head.weight", "model.embed_tokens.weight"


class CheckpointError(ValueError):
    """A checkpoint that cannot be read or written; the message is one line naming the problem."""


def checkpoint_tensors(model: MoETransformer) -> dict[str, torch.Tensor]:
    """The tensors a checkpoint of ``model`` holds, by Mixtral name: its parameters (views of them, not
    copies), without ``lm_head.weight`` when the embeddings are tied."""
    tensors = {name: tensor.detach() for name, tensor in model.state_dict().items()}
    if model.config.tie_word_embeddings:
        del tensors[TIED_HEAD]
    return tensors


def config_bytes(config: LMConfig) -> bytes:
    """The ``config.json`` of ``config``: sorted keys, an indent of 2, a final newline (deterministic)."""
    return (json.dumps(config.to_hf(), sort_keys=True, indent=2) + "\n").encode("utf-8")


def _write_new(path: Path, data: bytes) -> None:
    with open(path, "xb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def _create_directory(directory: Path, files: dict[str, bytes]) -> None:
    """Build ``directory`` beside itself under a temporary name, then rename it into place."""
    directory.parent.mkdir(parents=True, exist_ok=True)
    temp = directory.parent / f".{directory.name}.{secrets.token_hex(8)}.tmp"
    try:
        temp.mkdir()
        for name, data in files.items():
            _write_new(temp / name, data)
        os.rename(temp, directory)
    finally:
        shutil.rmtree(temp, ignore_errors=True)


def _replace_files(directory: Path, files: dict[str, bytes]) -> None:
    """Write every file of ``files`` to a temporary file in ``directory``, then rename each onto its name."""
    temps = {name: directory / f".{name}.{secrets.token_hex(8)}.tmp" for name in files}
    try:
        for name, data in files.items():
            _write_new(temps[name], data)
        for name, temp in temps.items():
            os.replace(temp, directory / name)
    finally:
        for temp in temps.values():
            temp.unlink(missing_ok=True)


def save_pretrained(model: MoETransformer, directory: Path) -> None:
    """Write ``model`` as a transformers checkpoint in ``directory`` (created if absent, its two files
    replaced if present); :class:`CheckpointError` if it cannot, with nothing written."""
    directory = Path(directory)
    files = {CONFIG_FILE: config_bytes(model.config),
             WEIGHTS_FILE: serialize_tensors(checkpoint_tensors(model), METADATA)}
    if directory.exists() and not directory.is_dir():
        raise CheckpointError(f"cannot write a checkpoint to {directory}: it exists and is not a directory")
    try:
        if directory.is_dir():
            _replace_files(directory, files)
        else:
            _create_directory(directory, files)
    except OSError as err:
        raise CheckpointError(f"cannot write a checkpoint to {directory}: {err.strerror or err}") from None


def read_config(directory: Path) -> LMConfig:
    """The model shape in ``directory/config.json``."""
    path = directory / CONFIG_FILE
    if not path.exists():
        raise CheckpointError(f"{directory} has no {CONFIG_FILE}")
    try:
        fields = json.loads(read_regular_text(path))
    except (OSError, UnicodeDecodeError) as err:
        raise CheckpointError(f"cannot read {path}: {err}") from None
    except json.JSONDecodeError as err:
        raise CheckpointError(f"{path} is not JSON: {err}") from None
    if not isinstance(fields, dict):
        raise CheckpointError(f"{path} holds a JSON {type(fields).__name__}, not an object")
    try:
        return LMConfig.from_hf(fields)
    except (LMConfigError, TypeError) as err:  # TypeError: a value of the wrong type (a string for a number)
        raise CheckpointError(f"{path}: {err}") from None


def read_tensors(directory: Path) -> dict[str, torch.Tensor]:
    """The tensors of ``directory/model.safetensors`` by name, fused expert tensors split per expert."""
    path = directory / WEIGHTS_FILE
    if not path.exists():
        if (directory / SHARD_INDEX_FILE).exists():
            raise CheckpointError(f"{directory} is a sharded checkpoint ({SHARD_INDEX_FILE}); only one "
                                  f"{WEIGHTS_FILE} is supported")
        raise CheckpointError(f"{directory} has no {WEIGHTS_FILE}")
    try:
        with open_regular_file(path) as handle:
            data = handle.read()
        tensors, _ = deserialize_tensors(data)
        return to_per_expert(tensors)
    except OSError as err:
        raise CheckpointError(f"cannot read {path}: {err}") from None
    except (CorruptObject, LayoutError) as err:
        raise CheckpointError(f"{path}: {err}") from None


def _listed(names: list[str]) -> str:
    shown = ", ".join(names[:3])
    return shown if len(names) <= 3 else f"{shown} and {len(names) - 3} more"


def _check_tensors(expected: dict[str, torch.Tensor], tensors: dict[str, torch.Tensor]) -> None:
    """Refuse a checkpoint whose tensors are not exactly the model's: names, shapes, floating dtypes."""
    missing = sorted(expected.keys() - tensors.keys())
    if missing:
        raise CheckpointError(f"{len(missing)} tensor(s) of the model missing: {_listed(missing)}")
    unexpected = sorted(tensors.keys() - expected.keys())
    if unexpected:
        raise CheckpointError(f"{len(unexpected)} tensor(s) the model does not have: {_listed(unexpected)}")
    for name, target in expected.items():
        tensor = tensors[name]
        if tensor.shape != target.shape:
            raise CheckpointError(f"{name} has shape {list(tensor.shape)}, the config needs {list(target.shape)}")
        if not tensor.is_floating_point():
            raise CheckpointError(f"{name} is {tensor.dtype}, not a floating-point tensor")


def model_from_tensors(config: LMConfig, tensors: dict[str, torch.Tensor]) -> MoETransformer:
    """A model of ``config`` holding ``tensors`` (per-expert Mixtral names), each checked and cast to float32."""
    with torch.random.fork_rng(devices=[]):  # the initial values are overwritten: leave the caller's RNG alone
        model = MoETransformer(config)
    expected = checkpoint_tensors(model)
    tensors = dict(tensors)
    if config.tie_word_embeddings and TIED_HEAD in tensors:  # a tied head written out anyway must be the embedding
        head = tensors.pop(TIED_HEAD)
        if EMBEDDING in tensors and not torch.equal(head, tensors[EMBEDDING]):
            raise CheckpointError(f"{TIED_HEAD} differs from {EMBEDDING} but tie_word_embeddings is true")
    _check_tensors(expected, tensors)
    with torch.no_grad():
        for name, target in expected.items():
            target.copy_(tensors[name])
    return model


def load_pretrained(directory: Path) -> MoETransformer:
    """The model in the transformers checkpoint ``directory`` (bmoe's or transformers' own); a
    :class:`CheckpointError` naming the problem if it is not one this model can hold."""
    directory = Path(directory)
    if not directory.is_dir():
        problem = "is not a directory" if directory.exists() else "does not exist"
        raise CheckpointError(f"cannot read a checkpoint from {directory}: it {problem}")
    config, tensors = read_config(directory), read_tensors(directory)
    try:
        return model_from_tensors(config, tensors)
    except CheckpointError as err:
        raise CheckpointError(f"{directory / WEIGHTS_FILE}: {err}") from None
