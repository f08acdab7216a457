"""The complete Shakespeare as fetched (tests/lm/conftest.py): the pinned 42 works, whole plays held out for
validation and none of their text in training, and the character tokenizer exact on all of it."""

from __future__ import annotations

from bmoe.lm.batches import encode_corpus
from bmoe.lm.corpus import SHAKESPEARE_WORKS, VALIDATION_WORKS, WORK_SEPARATOR
from bmoe.lm.tokenizer import tokenizer_for_corpus, tokenizer_from_bytes
from tests.lm.conftest import CachedCorpus


def test_the_corpus_has_the_pinned_works_each_a_nonempty_text(shakespeare: CachedCorpus) -> None:
    works = shakespeare.corpus.works
    assert len(works) == SHAKESPEARE_WORKS
    assert list(works) == sorted(works)
    assert all(text.strip() for text in works.values())
    assert "Hamlet" in works and "Sonnets" in works


def test_validation_is_whole_held_out_works_disjoint_from_training(shakespeare: CachedCorpus) -> None:
    corpus = shakespeare.corpus
    assert corpus.validation_works == VALIDATION_WORKS
    assert set(corpus.train_works).isdisjoint(corpus.validation_works)
    assert set(corpus.train_works) | set(corpus.validation_works) == set(corpus.works)
    assert corpus.train_text == WORK_SEPARATOR.join(corpus.works[t] for t in corpus.train_works)
    assert corpus.validation_text == WORK_SEPARATOR.join(corpus.works[t] for t in sorted(VALIDATION_WORKS))
    for title in corpus.validation_works:
        assert corpus.works[title] not in corpus.train_text
        assert corpus.works[title][-2000:] not in corpus.train_text  # not even the closing lines
    share = len(corpus.validation_text) / (len(corpus.train_text) + len(corpus.validation_text))
    assert 0.05 < share < 0.15


def test_the_character_tokenizer_round_trips_the_entire_corpus(shakespeare: CachedCorpus) -> None:
    corpus = shakespeare.corpus
    tokenizer = tokenizer_for_corpus(corpus, "char")
    assert tokenizer.vocab_size == len(set(corpus.train_text) | set(corpus.validation_text))
    for text in (corpus.train_text, corpus.validation_text):
        ids = encode_corpus(tokenizer, text)
        assert ids.numel() == len(text)
        assert tokenizer.decode(ids.tolist()) == text
    assert tokenizer_from_bytes(tokenizer.to_bytes()).to_bytes() == tokenizer.to_bytes()
