"""bmoe's Hugging Face checkpoints on their own: the bytes, the round trip, and every refusal in one line."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from safetensors import safe_open

from bmoe.lm.checkpoint import CONFIG_FILE, WEIGHTS_FILE, CheckpointError, load_pretrained, save_pretrained
from bmoe.storage.tensors import deserialize_tensors, serialize_tensors
from tests.lm.tiny_models import random_tokens, tiny_model


def files_of(directory: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(directory.iterdir())}


@pytest.mark.parametrize("tied", [False, True])
def test_save_load_save_gives_the_same_bytes(tmp_path: Path, tied: bool) -> None:
    save_pretrained(tiny_model(tie_word_embeddings=tied), tmp_path / "first")
    save_pretrained(load_pretrained(tmp_path / "first"), tmp_path / "second")
    first, second = files_of(tmp_path / "first"), files_of(tmp_path / "second")
    assert sorted(first) == [CONFIG_FILE, WEIGHTS_FILE]
    assert first == second


def test_the_loaded_model_holds_the_saved_parameters_and_computes_the_same_logits(tmp_path: Path) -> None:
    model = tiny_model()
    save_pretrained(model, tmp_path / "ckpt")
    loaded = load_pretrained(tmp_path / "ckpt").eval()
    assert loaded.config == model.config
    saved = model.state_dict()
    assert all(torch.equal(tensor, saved[name]) for name, tensor in loaded.state_dict().items())
    tokens = random_tokens(model.config, 2, 16, seed=5)
    with torch.no_grad():
        assert torch.equal(loaded(tokens).logits, model(tokens).logits)


@pytest.mark.parametrize("tied", [False, True])
def test_the_files_are_sorted_json_and_mixtral_names_with_pt_metadata(tmp_path: Path, tied: bool) -> None:
    model = tiny_model(tie_word_embeddings=tied)
    save_pretrained(model, tmp_path / "ckpt")
    text = (tmp_path / "ckpt" / CONFIG_FILE).read_text()
    config = json.loads(text)
    assert text == json.dumps(config, sort_keys=True, indent=2) + "\n"
    assert config["model_type"] == "mixtral" and config["tie_word_embeddings"] is tied
    with safe_open(tmp_path / "ckpt" / WEIGHTS_FILE, "pt") as weights:
        assert weights.metadata() == {"format": "pt"}
        names = set(weights.keys())
    expected = set(model.state_dict()) - ({"lm_head.weight"} if tied else set())
    assert names == expected
    assert "model.layers.1.block_sparse_moe.experts.3.w2.weight" in names


def test_loading_leaves_the_callers_random_generator_alone(tmp_path: Path) -> None:
    save_pretrained(tiny_model(), tmp_path / "ckpt")
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    load_pretrained(tmp_path / "ckpt")
    assert torch.equal(torch.rand(3), expected)


def test_a_bfloat16_checkpoint_is_read_into_float32(tmp_path: Path) -> None:
    save_pretrained(tiny_model(), tmp_path / "ckpt")
    rewrite_tensors(tmp_path / "ckpt", lambda t: t.update({k: v.to(torch.bfloat16) for k, v in t.items()}))
    stored, _ = deserialize_tensors((tmp_path / "ckpt" / WEIGHTS_FILE).read_bytes())
    loaded = load_pretrained(tmp_path / "ckpt").state_dict()
    assert all(loaded[name].dtype == torch.float32 and torch.equal(loaded[name], tensor.float())
               for name, tensor in stored.items())


def rewrite_config(directory: Path, **changes: object) -> None:
    path = directory / CONFIG_FILE
    path.write_text(json.dumps({**json.loads(path.read_text()), **changes}))


def rewrite_tensors(directory: Path, change: Callable[[dict[str, torch.Tensor]], None]) -> None:
    path = directory / WEIGHTS_FILE
    tensors, metadata = deserialize_tensors(path.read_bytes())
    change(tensors)
    path.write_bytes(serialize_tensors(tensors, metadata))


ROUTER = "model.layers.0.block_sparse_moe.gate.weight"
BROKEN: dict[str, tuple[Callable[[Path], None], str]] = {  # how a checkpoint is broken -> what the error names
    "no weights": (lambda d: (d / WEIGHTS_FILE).unlink(), f"has no {WEIGHTS_FILE}"),
    "no config": (lambda d: (d / CONFIG_FILE).unlink(), f"has no {CONFIG_FILE}"),
    "config not json": (lambda d: (d / CONFIG_FILE).write_text("{not json"), "is not JSON"),
    "config a list": (lambda d: (d / CONFIG_FILE).write_text("[1, 2]"), "not an object"),
    "sliding window": (lambda d: rewrite_config(d, sliding_window=8),
                       "sliding_window 8 is shorter than the context 32"),
    "scaled rope": (lambda d: rewrite_config(d, rope_parameters={"rope_type": "yarn", "factor": 2.0}), "rotary"),
    "a string for a number": (lambda d: rewrite_config(d, rms_norm_eps="small"), "rms_norm_eps must be positive"),
    "weights not safetensors": (lambda d: (d / WEIGHTS_FILE).write_bytes(b"\x08" + b"\x00" * 7 + b"{}"),
                                "not safetensors"),
    "wrong shape": (lambda d: rewrite_tensors(d, lambda t: t.update({ROUTER: torch.zeros(5, 32)})),
                    f"{ROUTER} has shape [5, 32], the config needs [4, 32]"),
    "unknown tensor": (lambda d: rewrite_tensors(d, lambda t: t.update({"model.extra.weight": torch.zeros(2)})),
                       "model.extra.weight"),
    "missing tensor": (lambda d: rewrite_tensors(d, lambda t: t.pop(ROUTER)), ROUTER),
    "both layouts": (lambda d: rewrite_tensors(d, lambda t: t.update({ROUTER.replace("block_sparse_moe", "mlp"):
                                                                       torch.zeros(4, 32)})),
                     f"{ROUTER} is given twice"),
    "integer tensor": (lambda d: rewrite_tensors(d, lambda t: t.update({ROUTER: torch.zeros(4, 32, dtype=torch.int8)})),
                       "not a floating-point tensor"),
}


@pytest.mark.parametrize("broken", sorted(BROKEN))
def test_a_broken_checkpoint_is_refused_in_one_line_naming_the_problem(tmp_path: Path, broken: str) -> None:
    directory = tmp_path / "ckpt"
    save_pretrained(tiny_model(), directory)
    breaking, named = BROKEN[broken]
    breaking(directory)
    with pytest.raises(CheckpointError) as refusal:
        load_pretrained(directory)
    assert named in str(refusal.value)
    assert "\n" not in str(refusal.value)


def test_a_directory_that_is_not_there_is_refused(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="does not exist"):
        load_pretrained(tmp_path / "absent")


@pytest.mark.parametrize("target", ["a-file", "a-file/ckpt"])
def test_saving_where_a_file_stands_fails_and_leaves_nothing_behind(tmp_path: Path, target: str) -> None:
    (tmp_path / "a-file").write_bytes(b"keep me")
    with pytest.raises(CheckpointError, match="cannot write a checkpoint"):
        save_pretrained(tiny_model(), tmp_path / target)
    assert files_of(tmp_path) == {"a-file": b"keep me"}


def test_saving_into_an_existing_checkpoint_replaces_its_files_and_leaves_no_temporaries(tmp_path: Path) -> None:
    directory = tmp_path / "ckpt"
    save_pretrained(tiny_model(seed=1), directory)
    (directory / "README.md").write_text("mine")
    save_pretrained(tiny_model(seed=2), directory)
    save_pretrained(tiny_model(seed=2), tmp_path / "fresh")
    assert files_of(directory) == {**files_of(tmp_path / "fresh"), "README.md": b"mine"}
    assert sorted(path.name for path in tmp_path.iterdir()) == ["ckpt", "fresh"]
