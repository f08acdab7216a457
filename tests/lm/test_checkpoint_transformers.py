"""bmoe's model against transformers' ``MixtralForCausalLM``, through checkpoints, both ways.

Tolerance: float32 on CPU, every logit and every router logit within ``ATOL`` = 1e-5 of transformers'.
Measured over 10 seeds, 3 sequences of 32 tokens, logits up to 5 in magnitude: at most 5.3e-6 on logits and
2.1e-6 on router logits against transformers' eager attention, 2.1e-6 and 1.0e-6 against its SDPA attention.
The two differ only in summation order (attention's softmax and matmuls, the experts' weighted sum). The
models are random, weights spread to N(0, 0.2) and norms to 1 + N(0, 0.2), so the logits are of order one.

transformers is imported once per module with the Hugging Face hub switched off (HF_HUB_OFFLINE, and
``local_files_only`` on every load): nothing here may reach the network. The import alone costs about 4-5 s
of CPU, hence the allowance of the fast tier's guard.
"""

from __future__ import annotations

import contextlib
import io
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
import torch
from safetensors.torch import save_file

from bmoe.lm.checkpoint import WEIGHTS_FILE, load_pretrained, save_pretrained
from bmoe.lm.model import MoETransformer
from tests.lm.reference_llama import offline_transformers
from tests.lm.tiny_models import TINY, random_tokens, spread, tiny_model

ATOL = 1e-5  # float32; see the module docstring
DOCS = Path(__file__).resolve().parents[2] / "docs" / "lm.md"
IMPORTS_TRANSFORMERS = pytest.mark.witness(seconds=20)  # the first test of a run pays transformers' import


@pytest.fixture(scope="module")
def transformers() -> Iterator[ModuleType]:
    with offline_transformers() as module:
        yield module


def hf_mixtral(transformers: ModuleType, seed: int, **changes: object) -> torch.nn.Module:
    """A random ``MixtralForCausalLM`` of the tiny shape, with a rotary base and norm epsilon that are not
    bmoe's defaults (so a checkpoint that lost them would show)."""
    config = transformers.MixtralConfig(**{**TINY, "rope_theta": 500.0, "rms_norm_eps": 1e-6, **changes},
                                        attn_implementation="eager")
    torch.manual_seed(seed)
    return spread(transformers.MixtralForCausalLM(config), seed).eval()


def hf_load(transformers: ModuleType, directory: Path) -> torch.nn.Module:
    """``MixtralForCausalLM.from_pretrained`` of a local directory, refusing any missing or unexpected key."""
    model, info = transformers.MixtralForCausalLM.from_pretrained(directory, local_files_only=True,
                                                                  output_loading_info=True)
    assert (info["missing_keys"], info["unexpected_keys"], info["mismatched_keys"]) == (set(), set(), set())
    return model.eval()


def assert_same_outputs(hf_model: torch.nn.Module, model: MoETransformer, tokens: torch.Tensor) -> None:
    """Equal logits (B, T, V) and router logits (B*T, N) per layer, within ATOL."""
    with torch.no_grad():
        theirs = hf_model(tokens, output_router_logits=True)
        ours = model(tokens)
    assert ours.logits.abs().max() > 0.5  # logits of order one: the tolerance means something
    torch.testing.assert_close(ours.logits, theirs.logits, rtol=0, atol=ATOL)
    assert len(theirs.router_logits) == len(ours.router_logits) == model.config.num_hidden_layers
    for their_layer, our_layer in zip(theirs.router_logits, ours.router_logits, strict=True):
        torch.testing.assert_close(our_layer, their_layer, rtol=0, atol=ATOL)


@IMPORTS_TRANSFORMERS
def test_a_mixtral_saved_by_transformers_loads_into_bmoe_with_equal_logits_and_router_logits(
        transformers: ModuleType, tmp_path: Path) -> None:
    hf_model = hf_mixtral(transformers, seed=7)
    hf_model.save_pretrained(tmp_path / "hf")
    model = load_pretrained(tmp_path / "hf").eval()
    assert (model.config.rope_theta, model.config.rms_norm_eps) == (500.0, 1e-6)
    assert_same_outputs(hf_model, model, random_tokens(model.config, 3, 16, seed=8))


@IMPORTS_TRANSFORMERS
@pytest.mark.parametrize("tied", [False, True])
def test_a_bmoe_checkpoint_loads_into_transformers_with_no_missing_keys_and_equal_logits(
        transformers: ModuleType, tmp_path: Path, tied: bool) -> None:
    model = tiny_model(seed=9, tie_word_embeddings=tied)
    save_pretrained(model, tmp_path / "bmoe")
    hf_model = hf_load(transformers, tmp_path / "bmoe")
    assert (hf_model.lm_head.weight is hf_model.model.embed_tokens.weight) is tied
    assert_same_outputs(hf_model, model, random_tokens(model.config, 3, 16, seed=10))


@IMPORTS_TRANSFORMERS
def test_the_fused_expert_tensors_transformers_holds_in_memory_load_as_well(
        transformers: ModuleType, tmp_path: Path) -> None:
    hf_model = hf_mixtral(transformers, seed=11)
    hf_model.save_pretrained(tmp_path / "fused")
    fused = {name: tensor.contiguous() for name, tensor in hf_model.state_dict().items()}
    assert "model.layers.0.mlp.experts.gate_up_proj" in fused  # (N, 2I, d): the layout this test is about
    save_file(fused, tmp_path / "fused" / WEIGHTS_FILE, metadata={"format": "pt"})
    model = load_pretrained(tmp_path / "fused").eval()
    assert_same_outputs(hf_model, model, random_tokens(model.config, 2, 16, seed=12))


@IMPORTS_TRANSFORMERS
def test_a_transformers_checkpoint_saved_again_by_bmoe_keeps_its_tensors_and_then_its_bytes(
        transformers: ModuleType, tmp_path: Path) -> None:
    hf_mixtral(transformers, seed=13).save_pretrained(tmp_path / "hf")
    save_pretrained(load_pretrained(tmp_path / "hf"), tmp_path / "once")
    save_pretrained(load_pretrained(tmp_path / "once"), tmp_path / "twice")
    for name in ("config.json", WEIGHTS_FILE):
        assert (tmp_path / "once" / name).read_bytes() == (tmp_path / "twice" / name).read_bytes()
    shutil.copy(tmp_path / "hf" / "config.json", tmp_path / "once" / "config.json")  # transformers' own config
    hf_once = hf_load(transformers, tmp_path / "once")
    hf_original = hf_load(transformers, tmp_path / "hf")
    original = hf_original.state_dict()
    assert all(torch.equal(tensor, original[name]) for name, tensor in hf_once.state_dict().items())


@IMPORTS_TRANSFORMERS
def test_the_docs_snippets_write_a_checkpoint_that_transformers_loads(
        transformers: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    section = DOCS.read_text().split("## Checkpoints (Hugging Face)\n", 1)[1].split("\n## ", 1)[0]
    snippets = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    assert len(snippets) == 2
    monkeypatch.chdir(tmp_path)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        for snippet in snippets:
            exec(compile(snippet, str(DOCS), "exec"), {"__name__": "docs"})
    assert out.getvalue() == "torch.Size([1, 3, 65])\n"
