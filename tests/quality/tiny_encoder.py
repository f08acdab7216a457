"""A tiny sentence encoder written in the test: a BERT of random seeded weights under transformers' names, a
WordPiece tokenizer over a few words, and sentence-transformers' configuration files, in a directory laid out as
the cached all-MiniLM-L6-v2 (``lm/pretrained/fetch.py``'s ``encoder_directory``)."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import save_file
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors

WORDS = ["the", "capital", "of", "france", "is", "paris", "sea", "poem", "egg", "boil", "sky", "blue", "why", "what",
         "a", "?", "."]
SENTENCES = ["What is the capital of France?", "The capital of France is Paris.", "why is the sky blue",
             "a poem of the sea", "zebra"]
SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
CONFIG = {"model_type": "bert", "hidden_act": "gelu", "position_embedding_type": "absolute",
          "vocab_size": len(SPECIAL) + len(WORDS), "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4,
          "intermediate_size": 64, "max_position_embeddings": 16, "type_vocab_size": 2, "layer_norm_eps": 1e-12}


def tiny_tokenizer() -> Tokenizer:
    vocabulary = {token: index for index, token in enumerate(SPECIAL + WORDS)}
    tokenizer = Tokenizer(models.WordPiece(vocabulary, unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", vocabulary["[CLS]"]), ("[SEP]", vocabulary["[SEP]"])])
    return tokenizer


def tiny_weights(seed: int = 0) -> dict[str, torch.Tensor]:
    """Every tensor a BertModel of CONFIG has (its pooler included), seeded, under transformers' names."""
    generator = torch.Generator().manual_seed(seed)
    d, f, c = CONFIG["hidden_size"], CONFIG["intermediate_size"], CONFIG

    def normal(*shape: int) -> torch.Tensor:
        return 0.2 * torch.randn(*shape, generator=generator)

    tensors = {"embeddings.word_embeddings.weight": normal(c["vocab_size"], d),
               "embeddings.position_embeddings.weight": normal(c["max_position_embeddings"], d),
               "embeddings.token_type_embeddings.weight": normal(2, d),
               "embeddings.LayerNorm.weight": 1 + normal(d), "embeddings.LayerNorm.bias": normal(d),
               "pooler.dense.weight": normal(d, d), "pooler.dense.bias": normal(d)}
    for i in range(c["num_hidden_layers"]):
        for name, (rows, columns) in {"attention.self.query": (d, d), "attention.self.key": (d, d),
                                      "attention.self.value": (d, d), "attention.output.dense": (d, d),
                                      "intermediate.dense": (f, d), "output.dense": (d, f)}.items():
            tensors[f"encoder.layer.{i}.{name}.weight"] = normal(rows, columns)
            tensors[f"encoder.layer.{i}.{name}.bias"] = normal(rows)
        for name in ("attention.output.LayerNorm", "output.LayerNorm"):
            tensors[f"encoder.layer.{i}.{name}.weight"] = 1 + normal(d)
            tensors[f"encoder.layer.{i}.{name}.bias"] = normal(d)
    return tensors


def write_tiny_encoder(directory: Path, seed: int = 0, max_seq_length: int = 12) -> Path:
    """The tiny encoder's files in ``directory``; ``directory``."""
    (directory / "1_Pooling").mkdir(parents=True, exist_ok=True)
    (directory / "config.json").write_text(json.dumps(CONFIG))
    save_file(tiny_weights(seed), str(directory / "model.safetensors"))
    tiny_tokenizer().save(str(directory / "tokenizer.json"))
    (directory / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": max_seq_length}))
    (directory / "1_Pooling" / "config.json").write_text(json.dumps(
        {"word_embedding_dimension": CONFIG["hidden_size"], "pooling_mode_cls_token": False,
         "pooling_mode_mean_tokens": True, "pooling_mode_max_tokens": False}))
    return directory
