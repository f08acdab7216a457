"""Owns rebuilding a GGUF file's byte-level BPE tokenizer (``tokenizer.ggml.model`` "gpt2") with Hugging Face
``tokenizers``: the vocabulary (``tokenizer.ggml.tokens``, a token's id its index), the merges
(``tokenizer.ggml.merges``, "left right", in rank order) and the special tokens (``tokenizer.ggml.token_type``:
control tokens such as ``<|im_start|>`` are special, user-defined ones are added as they are), with the
pre-tokenizer llama.cpp names in ``tokenizer.ggml.pre``:

- ``smollm``: every digit on its own, then GPT-2's byte-level regex (SmolLM2's ``tokenizer.json``: ``Digits``
  with ``individual_digits``, then ``ByteLevel`` without a prefix space);
- ``gpt2`` / ``default``: GPT-2's byte-level regex alone.

The result is a :class:`~bmoe.lm.bpe_tokenizer.BPETokenizer` (bmoe's tokenizer interface, ``lm/tokenizer.py``);
its bytes are a ``tokenizer.json`` any ``tokenizers`` or ``transformers`` user loads.

Must not know: the weights, the chat template, where the file came from.
"""

from __future__ import annotations

from typing import Any

from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers

from bmoe.data.errors import DataError
from bmoe.lm.bpe_tokenizer import BPETokenizer

from .gguf_llama import metadata

CONTROL, USER_DEFINED = 3, 4  # llama.cpp's token types (gguf.TokenType)
PRE_TOKENIZERS = ("smollm", "gpt2", "default")


def pre_tokenizer(kind: str) -> Any:
    """The ``tokenizers`` pre-tokenizer of llama.cpp's ``tokenizer.ggml.pre`` ``kind``."""
    byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    if kind == "smollm":
        return pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True), byte_level])
    return byte_level


def gguf_tokenizer(reader: Any) -> BPETokenizer:
    """The file's tokenizer, ids as the file numbers them; one DataError line for one this cannot rebuild."""
    where = reader.data.filename
    kind = metadata(reader, "tokenizer.ggml.model")
    if kind != "gpt2":
        raise DataError(f"{where}: tokenizer {kind!r}; only a byte-level BPE (gpt2) is rebuilt")
    pre = metadata(reader, "tokenizer.ggml.pre", "default")
    if pre not in PRE_TOKENIZERS:
        raise DataError(f"{where}: pre-tokenizer {pre!r} is not implemented (known: {', '.join(PRE_TOKENIZERS)})")
    tokens: list[str] = metadata(reader, "tokenizer.ggml.tokens")
    types: list[int] = metadata(reader, "tokenizer.ggml.token_type", [1] * len(tokens))
    merges = [tuple(merge.split(" ", 1)) for merge in metadata(reader, "tokenizer.ggml.merges")]
    if len(set(tokens)) != len(tokens) or len(types) != len(tokens) or any(len(m) != 2 for m in merges):
        raise DataError(f"{where}: the tokenizer's vocabulary has repeated tokens, or its types or merges are "
                        "malformed")
    try:
        tokenizer = Tokenizer(models.BPE(vocab={token: i for i, token in enumerate(tokens)}, merges=merges))
    except Exception as err:  # the library raises plain Exception for a merge of unknown tokens
        raise DataError(f"{where}: the tokenizer cannot be rebuilt ({str(err).splitlines()[0]})") from None
    tokenizer.pre_tokenizer = pre_tokenizer(pre)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.add_special_tokens([AddedToken(token, special=True, normalized=False)
                                  for token, of in zip(tokens, types, strict=True) if of == CONTROL])
    tokenizer.add_tokens([AddedToken(token, special=False, normalized=False)
                          for token, of in zip(tokens, types, strict=True) if of == USER_DEFINED])
    if tokenizer.get_vocab_size() != len(tokens):
        raise DataError(f"{where}: the rebuilt tokenizer has {tokenizer.get_vocab_size()} tokens, the file "
                        f"{len(tokens)}")
    return BPETokenizer(tokenizer)


def special_tokens(reader: Any) -> dict[str, tuple[str, int]]:
    """The tokens (text, id) the file names for its roles ("bos", "eos", "unknown", "padding"), those it names."""
    tokens: list[str] = metadata(reader, "tokenizer.ggml.tokens")
    named = {}
    for role in ("bos", "eos", "unknown", "padding"):
        token_id = int(metadata(reader, f"tokenizer.ggml.{role}_token_id", -1))
        if 0 <= token_id < len(tokens):
            named[role] = (tokens[token_id], token_id)
    return named
