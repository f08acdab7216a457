"""The character tokenizer and the byte-level BPE, on small inline text: exact round trips, the same bytes from
the same training text, a restored tokenizer equal to the saved one, and one DataError line for what they
cannot encode or decode."""

from __future__ import annotations

import pytest

from bmoe.data.errors import DataError
from bmoe.lm.bpe_tokenizer import BPETokenizer
from bmoe.lm.char_tokenizer import CharTokenizer
from bmoe.lm.corpus import SHAKESPEARE, Corpus
from bmoe.lm.tokenizer import tokenizer_for_corpus, tokenizer_from_bytes

VERSE = """FIRST CITIZEN.
Before we proceed any further, hear me speak.

ALL.
Speak, speak.

FIRST CITIZEN.
You are all resolved rather to die than to famish?

ALL.
Resolved. resolved.
"""
# text the BPE never saw while training, with characters outside ASCII
UNSEEN = "Naïve café — 'tis ☃ twelve o'clock;\n\ttabs,  doubled  spaces\r\nand an end"


def trained_bpe(vocab_size: int = 300) -> BPETokenizer:
    return BPETokenizer.train(VERSE * 3, vocab_size)


def test_the_character_vocabulary_is_the_texts_sorted_characters_and_round_trips() -> None:
    tokenizer = CharTokenizer.from_text(VERSE)
    assert tokenizer.chars == "".join(sorted(set(VERSE)))
    ids = tokenizer.encode(VERSE)
    assert len(ids) == len(VERSE) and set(ids) == set(range(tokenizer.vocab_size))
    assert [tokenizer.chars[i] for i in ids] == list(VERSE)
    assert tokenizer.decode(ids) == VERSE


def test_a_character_outside_the_vocabulary_is_named() -> None:
    tokenizer = CharTokenizer.from_text("abc")
    with pytest.raises(DataError, match=r"character 'z' \(at 2\) is not in the tokenizer's vocabulary of 3"):
        tokenizer.encode("abz")
    with pytest.raises(DataError, match=r"token id 3 is outside the character vocabulary \[0, 3\)"):
        tokenizer.decode([0, 3])


def test_a_saved_character_tokenizer_comes_back_the_same() -> None:
    tokenizer = CharTokenizer.from_text(VERSE + UNSEEN)
    restored = tokenizer_from_bytes(tokenizer.to_bytes())
    assert isinstance(restored, CharTokenizer)
    assert restored.to_bytes() == tokenizer.to_bytes()
    assert restored.encode(UNSEEN) == tokenizer.encode(UNSEEN)
    assert restored.decode(tokenizer.encode(UNSEEN)) == UNSEEN


def test_bpe_round_trips_seen_and_unseen_text_and_compresses_what_it_saw() -> None:
    tokenizer = trained_bpe()
    assert tokenizer.vocab_size == 300
    for text in (VERSE, UNSEEN, ""):
        assert tokenizer.decode(tokenizer.encode(text)) == text
    assert len(tokenizer.encode(VERSE)) < len(VERSE.encode("utf-8")) / 2


def test_bpe_is_deterministic_given_the_text_and_the_vocabulary_size() -> None:
    first, second = trained_bpe(), trained_bpe()
    assert first.to_bytes() == second.to_bytes()
    assert trained_bpe(280).to_bytes() != first.to_bytes()


def test_a_saved_bpe_is_a_tokenizer_json_that_comes_back_the_same() -> None:
    tokenizer = trained_bpe()
    restored = tokenizer_from_bytes(tokenizer.to_bytes())
    assert isinstance(restored, BPETokenizer)
    assert restored.to_bytes() == tokenizer.to_bytes()
    assert restored.encode(UNSEEN) == tokenizer.encode(UNSEEN)


@pytest.mark.parametrize("vocab_size", [255, 2**16 + 1])
def test_a_bpe_vocabulary_outside_the_byte_range_is_refused(vocab_size: int) -> None:
    with pytest.raises(DataError, match=f"256 to 65536 tokens, not {vocab_size}"):
        BPETokenizer.train(VERSE, vocab_size)


def test_an_out_of_range_bpe_id_is_refused() -> None:
    with pytest.raises(DataError, match=r"token id 300 is outside the BPE vocabulary \[0, 300\)"):
        trained_bpe().decode([1, 300])


@pytest.mark.parametrize(("data", "needle"), [
    (b"\xff\xfe", "not UTF-8 JSON"),
    (b"[1, 2]", "neither a character tokenizer nor a BPE"),
    (b'{"kind": "word"}', "neither a character tokenizer nor a BPE"),
    (b'{"kind": "char", "chars": "ba"}', "distinct characters, sorted"),
    (b'{"kind": "char", "chars": "ab", "extra": 1}', "exactly the keys"),
    (b'{"model": {"type": "BPE"}}', "not a tokenizer.json"),
])
def test_bytes_that_are_no_saved_tokenizer_are_one_line(data: bytes, needle: str) -> None:
    with pytest.raises(DataError, match=needle) as caught:
        tokenizer_from_bytes(data)
    assert "\n" not in str(caught.value)


def small_corpus() -> Corpus:
    return Corpus(source=SHAKESPEARE, works={"Held": "Held out: ZQX!", "Seen": VERSE},
                  validation_works=("Held",))


def test_the_corpus_character_tokenizer_encodes_validation_characters_training_lacks() -> None:
    corpus = small_corpus()
    assert not set("ZQX!") <= set(corpus.train_text)
    tokenizer = tokenizer_for_corpus(corpus, "char")
    assert tokenizer.decode(tokenizer.encode(corpus.validation_text)) == corpus.validation_text


def test_the_corpus_bpe_is_trained_on_the_training_works_only() -> None:
    corpus = small_corpus()
    assert tokenizer_for_corpus(corpus, "bpe", 280).to_bytes() == BPETokenizer.train(corpus.train_text, 280).to_bytes()


@pytest.mark.parametrize(("kind", "vocab_size", "needle"), [
    ("char", 300, "applies to the bpe tokenizer only"),
    ("word", None, "unknown tokenizer 'word'"),
])
def test_a_tokenizer_the_corpus_cannot_have_is_refused(kind: str, vocab_size: int | None, needle: str) -> None:
    with pytest.raises(DataError, match=needle):
        tokenizer_for_corpus(small_corpus(), kind, vocab_size)
