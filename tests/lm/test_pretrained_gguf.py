"""A GGUF Llama read into bmoe: a tiny one written here as llama.cpp writes one (``tests/lm/gguf_files.py``: Q4_1
matrices, a Q8_0 embedding, Q/K rows permuted) comes back as the dense weights it holds, in Hugging Face's rotary
layout, with its tokenizer and chat template; made into an MoE of neuron slices it computes what transformers'
dense ``LlamaForCausalLM`` computes from the same weights.

Tolerance: float32 on CPU, logits within ``ATOL`` = 1e-4 of transformers' (measured over the prompts below: at
most about 2e-6; the two differ in summation order only: the FFN summed slice by slice, attention's kernels).
transformers is imported with the hub switched off; nothing here reaches the network.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
import torch

from bmoe.data.errors import DataError
from bmoe.lm.model import MoETransformer, apply_rotary, rotary_tables
from bmoe.lm.pretrained import read_gguf_model
from bmoe.lm.pretrained.gguf_llama import dequantized, llama_shape, llama_tensors, open_gguf
from tests.lm.gguf_files import CHAT_TEMPLATE, SPECIAL, TinyGGUF, write_tiny_gguf
from tests.lm.reference_llama import dense_llama, greedy, llama_cpp_rotary, offline_transformers

ATOL = 1e-4  # float32; see the module docstring
PROMPTS = [[1, 40, 41, 42], [5, 6], [100, 200, 17, 99, 3, 250], [2]]
IMPORTS_TRANSFORMERS = pytest.mark.witness(seconds=20)  # the first test of a run pays transformers' import


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> TinyGGUF:
    return write_tiny_gguf(tmp_path_factory.mktemp("gguf") / "tiny.gguf")


@pytest.fixture(scope="module")
def transformers() -> Iterator[ModuleType]:
    with offline_transformers() as module:
        yield module


def dense_reference(transformers: ModuleType, tiny: TinyGGUF) -> torch.nn.Module:
    return dense_llama(transformers, tiny.shape, tiny.dense)


def test_the_reader_gives_back_the_weights_the_file_holds_in_hugging_faces_rotary_layout(tiny: TinyGGUF) -> None:
    reader = open_gguf(tiny.path)
    shape = llama_shape(reader)
    assert shape == tiny.shape
    tensors = llama_tensors(reader, shape)
    assert tensors.keys() == tiny.dense.keys()
    for name, expected in tiny.dense.items():
        assert torch.equal(tensors[name], expected), name
    raw_q = dequantized(next(t for t in reader.tensors if t.name == "blk.0.attn_q.weight"))
    assert not torch.equal(raw_q, tensors["model.layers.0.self_attn.q_proj.weight"])  # the file's order differs


def test_attention_scores_of_the_files_rows_under_llama_cpps_rotary_equal_bmoes_on_the_rows_read(
        tiny: TinyGGUF) -> None:
    reader = open_gguf(tiny.path)
    shape = llama_shape(reader)
    read = llama_tensors(reader, shape)
    raw = {t.name: dequantized(t) for t in reader.tensors if t.name in ("blk.1.attn_q.weight", "blk.1.attn_k.weight")}
    x = torch.randn(9, shape.hidden_size, generator=torch.Generator().manual_seed(0))  # (T, d)
    heads, kv_heads, head_dim = shape.num_attention_heads, shape.num_key_value_heads, shape.head_dim
    group = heads // kv_heads

    def per_head(w: torch.Tensor, count: int) -> torch.Tensor:
        return (x @ w.T).view(9, count, head_dim).transpose(0, 1)  # (H, T, hd)

    q, k = per_head(raw["blk.1.attn_q.weight"], heads), per_head(raw["blk.1.attn_k.weight"], kv_heads)
    llama_cpp = llama_cpp_rotary(q, shape.rope_theta) @ llama_cpp_rotary(k, shape.rope_theta).repeat_interleave(
        group, dim=0).transpose(1, 2)  # (H, T, T)
    cos, sin = rotary_tables(head_dim, 9, shape.rope_theta)
    q = apply_rotary(per_head(read["model.layers.1.self_attn.q_proj.weight"], heads)[None], cos, sin)[0]
    k = apply_rotary(per_head(read["model.layers.1.self_attn.k_proj.weight"], kv_heads)[None], cos, sin)[0]
    bmoe = q @ k.repeat_interleave(group, dim=0).transpose(1, 2)  # (H, T, T)
    torch.testing.assert_close(bmoe, llama_cpp, rtol=0, atol=1e-4)
    assert (bmoe - llama_cpp).abs().max() < 1e-3 * bmoe.abs().max()


@IMPORTS_TRANSFORMERS
@pytest.mark.parametrize("experts", [4, 2, 1])
def test_the_moefied_model_computes_transformers_dense_llama_greedy_tokens_equal(
        tiny: TinyGGUF, transformers: ModuleType, experts: int) -> None:
    pretrained = read_gguf_model(tiny.path, experts=experts)
    model: MoETransformer = pretrained.model
    assert model.config.num_local_experts == model.config.num_experts_per_tok == experts
    assert model.config.intermediate_size * experts == tiny.shape.intermediate_size
    dense = dense_reference(transformers, tiny)
    worst = 0.0
    for prompt in PROMPTS:
        with torch.no_grad():
            ours, theirs = model(torch.tensor([prompt])).logits, dense(torch.tensor([prompt])).logits
        worst = max(worst, float((ours - theirs).abs().max()))
        assert greedy(model, prompt, 8) == greedy(dense, prompt, 8), prompt
    assert worst < ATOL, worst


def test_the_tokenizer_gives_the_ids_of_the_one_the_file_was_made_from_and_round_trips(tiny: TinyGGUF) -> None:
    tokenizer = read_gguf_model(tiny.path).tokenizer
    assert tokenizer.vocab_size == tiny.tokenizer.get_vocab_size()
    for text in ["The quick brown fox", "12345 experts", "Über café naïve!", "  spaces\n\nand lines ",
                 "<|im_start|>user\nhi<|im_end|>", "unseen words: zebra xylophone 9"]:
        ids = tokenizer.encode(text)
        assert ids == tiny.tokenizer.encode(text, add_special_tokens=False).ids, text
        assert tokenizer.decode(ids) == text
    assert tokenizer.encode("<|im_start|><|im_end|>") == [SPECIAL.index("<|im_start|>"), SPECIAL.index("<|im_end|>")]
    assert tokenizer.encode("2024") == [tokenizer.encode(digit)[0] for digit in "2024"]  # digit by digit


@IMPORTS_TRANSFORMERS
def test_the_chat_template_renders_as_transformers_apply_chat_template(tiny: TinyGGUF,
                                                                       transformers: ModuleType) -> None:
    pretrained = read_gguf_model(tiny.path)
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi {{ there }} é"}]
    reference = transformers.PreTrainedTokenizerFast(tokenizer_object=tiny.tokenizer, chat_template=CHAT_TEMPLATE,
                                                     bos_token="<|im_start|>", eos_token="<|im_end|>")
    for opened in (True, False):
        expected = reference.apply_chat_template(messages, tokenize=False, add_generation_prompt=opened)
        assert pretrained.chat_template.render(messages, add_generation_prompt=opened) == expected
    assert pretrained.chat_prompt(messages) == pretrained.tokenizer.encode(expected + "<|im_start|>assistant\n")
    assert pretrained.stop_token_ids == (2,)


def test_a_file_that_is_not_gguf_or_not_a_llama_is_one_line(tiny: TinyGGUF, tmp_path: Path) -> None:
    junk = tmp_path / "junk.gguf"
    junk.write_bytes(b"not a gguf file at all" * 10)
    with pytest.raises(DataError, match="not a readable GGUF file"):
        read_gguf_model(junk)
    with pytest.raises(DataError, match="positive divisor of the FFN width 64"):
        read_gguf_model(tiny.path, experts=3)
    other = write_tiny_gguf(tmp_path / "other.gguf", pre="llama-bpe")
    with pytest.raises(DataError, match="pre-tokenizer 'llama-bpe' is not implemented"):
        read_gguf_model(other.path)
