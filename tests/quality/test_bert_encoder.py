"""The BERT forward (``lm/quality/bert.py``) and the sentence encoder around it against PyTorch's own
``nn.TransformerEncoderLayer`` (an independent implementation of the same post-norm block) on tiny seeded weights,
padding and pooling included; determinism; the files and inputs it refuses, by name. The comparison with
transformers' BertModel is ``test_bert_transformers.py`` (slow: transformers' import alone is 6 s of CPU)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from bmoe.data.errors import DataError
from bmoe.lm.quality.bert import BertConfig, BertEncoder, checkpoint_name, load_bert
from bmoe.lm.quality.sentence_encoder import read_sentence_encoder
from tests.quality.tiny_encoder import CONFIG, SENTENCES, tiny_weights, write_tiny_encoder

Forward = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def torch_reference(weights: dict[str, torch.Tensor]) -> Forward:
    """The same BERT as a stack of PyTorch's post-norm ``nn.TransformerEncoderLayer``, embeddings by hand."""
    d, c = CONFIG["hidden_size"], CONFIG
    layers = []
    for i in range(c["num_hidden_layers"]):
        layer = torch.nn.TransformerEncoderLayer(d, c["num_attention_heads"], c["intermediate_size"], dropout=0.0,
                                                 activation="gelu", layer_norm_eps=c["layer_norm_eps"],
                                                 batch_first=True, norm_first=False)
        w = {name.split(".", 3)[3]: t for name, t in weights.items() if name.startswith(f"encoder.layer.{i}.")}
        qkv = ("query", "key", "value")
        state = {"self_attn.in_proj_weight": torch.cat([w[f"attention.self.{n}.weight"] for n in qkv]),
                 "self_attn.in_proj_bias": torch.cat([w[f"attention.self.{n}.bias"] for n in qkv])}
        for ours, theirs in (("self_attn.out_proj", "attention.output.dense"), ("norm1", "attention.output.LayerNorm"),
                             ("linear1", "intermediate.dense"), ("linear2", "output.dense"),
                             ("norm2", "output.LayerNorm")):
            state[f"{ours}.weight"], state[f"{ours}.bias"] = w[f"{theirs}.weight"], w[f"{theirs}.bias"]
        layer.load_state_dict(state)
        layers.append(layer.eval())

    def forward(ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        T = ids.shape[1]
        x = (weights["embeddings.word_embeddings.weight"][ids] + weights["embeddings.position_embeddings.weight"][:T]
             + weights["embeddings.token_type_embeddings.weight"][0])  # (B, T, d)
        x = torch.nn.functional.layer_norm(x, (d,), weights["embeddings.LayerNorm.weight"],
                                           weights["embeddings.LayerNorm.bias"], c["layer_norm_eps"])
        for layer in layers:
            x = layer(x, src_key_padding_mask=~mask.bool())
        return x  # (B, T, d)
    return forward


def test_every_parameter_has_its_checkpoint_name_and_the_pooler_alone_is_left_out() -> None:
    config = BertConfig.from_json(CONFIG, "tiny")
    names = {checkpoint_name(name) for name in BertEncoder(config).state_dict()}
    assert names == {name for name in tiny_weights() if not name.startswith("pooler.")}


def test_the_forward_is_pytorch_transformer_encoder_layers_on_a_padded_batch() -> None:
    weights = tiny_weights(seed=3)
    ours = load_bert(BertConfig.from_json(CONFIG, "tiny"), weights, "tiny")
    ids = torch.tensor([[2, 5, 6, 7, 8, 3], [2, 9, 10, 3, 0, 0]])  # (2, 6), the second padded
    mask = torch.tensor([[1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0]])
    with torch.no_grad():
        expected = torch_reference(weights)(ids, mask)  # (2, 6, d)
        got = ours(ids, mask)
        alone = ours(ids[1:, :4], mask[1:, :4])
    assert got.shape == expected.shape == (2, 6, CONFIG["hidden_size"])
    assert torch.allclose(got[mask.bool()], expected[mask.bool()], atol=1e-5)
    assert torch.allclose(alone[0], got[1, :4], atol=1e-5)  # padding changes nothing the mask keeps


def test_sentence_embeddings_are_mean_pooled_over_the_tokens_and_of_unit_length(tmp_path: Path) -> None:
    encoder = read_sentence_encoder(write_tiny_encoder(tmp_path / "tiny", seed=1), "tiny")
    got = encoder.encode(SENTENCES)  # (5, d)
    reference = torch_reference(tiny_weights(seed=1))
    for row, sentence in zip(got, SENTENCES, strict=True):
        ids = torch.tensor([encoder.tokenizer.encode(sentence).ids])  # (1, T)
        with torch.no_grad():
            states = reference(ids, torch.ones_like(ids))[0]  # (T, d)
        assert torch.allclose(row, torch.nn.functional.normalize(states.mean(dim=0), dim=0), atol=1e-5)
    assert torch.allclose(got.norm(dim=1), torch.ones(len(SENTENCES)), atol=1e-6)
    assert not torch.allclose(got[0], got[1])


def test_an_embedding_is_the_same_bits_alone_beside_others_and_every_time(tmp_path: Path) -> None:
    encoder = read_sentence_encoder(write_tiny_encoder(tmp_path / "tiny"), "tiny")
    together = encoder.encode(SENTENCES)
    assert torch.equal(encoder.encode([SENTENCES[2]])[0], together[2])
    again = read_sentence_encoder(write_tiny_encoder(tmp_path / "again"), "tiny").encode(SENTENCES)
    assert torch.equal(again, together)


def test_texts_past_the_maximum_length_are_truncated_not_refused(tmp_path: Path) -> None:
    encoder = read_sentence_encoder(write_tiny_encoder(tmp_path / "tiny", max_seq_length=12), "tiny")
    assert len(encoder.tokenizer.encode("the sea " * 40).ids) == 12
    assert encoder.encode(["the sea " * 40]).shape == (1, CONFIG["hidden_size"])


def test_a_text_that_is_not_a_str_is_refused_by_its_index(tmp_path: Path) -> None:
    encoder = read_sentence_encoder(write_tiny_encoder(tmp_path / "tiny"), "tiny")
    with pytest.raises(ValueError, match=r"texts\[1\] must be a str, got bytes"):
        encoder.encode(["the sea", b"the sky"])  # type: ignore[list-item]


def _config(values: dict[str, object]) -> Callable[[Path], object]:
    return lambda directory: (directory / "config.json").write_text(json.dumps(values))


@pytest.mark.parametrize(("change", "message"), [
    (_config({**CONFIG, "model_type": "roberta"}), "not a BERT"),
    (_config({k: v for k, v in CONFIG.items() if k != "vocab_size"}), "config.json has no vocab_size"),
    (lambda d: (d / "1_Pooling" / "config.json").write_text(json.dumps({"pooling_mode_cls_token": True})),
     "only mean pooling"),
    (lambda d: (d / "tokenizer.json").unlink(), "cannot read the sentence encoder's files"),
])
def test_files_the_encoder_cannot_run_are_one_data_error_naming_what(
        tmp_path: Path, change: Callable[[Path], object], message: str) -> None:
    directory = write_tiny_encoder(tmp_path / "tiny")
    change(directory)
    with pytest.raises(DataError, match=message):
        read_sentence_encoder(directory, "tiny")


def test_a_missing_or_mis_shaped_tensor_is_named() -> None:
    config = BertConfig.from_json(CONFIG, "tiny")
    weights = tiny_weights()
    del weights["encoder.layer.1.output.dense.bias"]
    with pytest.raises(DataError, match=r"no encoder\.layer\.1\.output\.dense\.bias"):
        load_bert(config, weights, "tiny")
    weights = tiny_weights()
    weights["embeddings.word_embeddings.weight"] = weights["embeddings.word_embeddings.weight"][:-1]
    with pytest.raises(DataError, match=r"embeddings\.word_embeddings\.weight is \(21, 32\), expected \(22, 32\)"):
        load_bert(config, weights, "tiny")
