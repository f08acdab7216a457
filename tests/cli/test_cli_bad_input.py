"""Bad input: one clear line, exit status 2, and nothing written."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.helpers import SMALL, assert_user_error
from tests.cli.in_process import bmoe_here as bmoe


@pytest.mark.parametrize(("args", "needles"), [
    (["--dataset", "imagenet"], ["unknown dataset", "imagenet"]),
    (["--top-k", "5", "--experts", "4"], ["K=5", "N=4"]),
    (["--malicious-ratio", "1.0"], ["malicious ratio", "[0, 1)"]),
    (["--malicious-ratio", "-0.1"], ["malicious ratio"]),
    (["--edges", "0"], ["edges M"]),
    (["--rule", "vote"], ["rule must be one of"]),
    (["--attack", "teleport"], ["unknown attack"]),
    (["--attack-param", "noise"], ["NAME=NUMBER"]),
    (["--attack-param", "nosuch=1"], ["no parameter"]),
    (["--rounds", "many"], ["rounds"]),
])
def test_bad_training_flags(tmp_path: Path, args: list[str], needles: list[str]) -> None:
    run_dir = tmp_path / "run"
    assert_user_error(bmoe("train", "--run-dir", run_dir, *args), *needles)
    assert not run_dir.exists()


def test_missing_data_files(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    empty = tmp_path / "empty"
    empty.mkdir()
    assert_user_error(bmoe("train", "--run-dir", run_dir, "--dataset", "fashion-mnist", "--data-dir", empty),
                      "fashion-mnist", "not found")
    assert_user_error(bmoe("train", "--run-dir", run_dir, "--dataset", "cifar10", "--data-dir", empty),
                      "cifar10", "data_batch_1")
    assert not run_dir.exists()


def test_corrupt_data_file(tmp_path: Path) -> None:
    data = tmp_path / "fm"
    data.mkdir()
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                 "t10k-labels-idx1-ubyte"):
        (data / name).write_bytes(b"\x00\x00\x08\x03garbage")
    run_dir = tmp_path / "run"
    assert_user_error(bmoe("train", "--run-dir", run_dir, "--dataset", "fashion-mnist", "--data-dir", data),
                      "fashion-mnist")
    assert not run_dir.exists()


def test_unreadable_run_directories(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    assert_user_error(bmoe("audit", missing), "does not exist")
    assert_user_error(bmoe("infer", missing), "does not exist")
    a_file = tmp_path / "file"
    a_file.write_text("x")
    assert_user_error(bmoe("audit", a_file), "not a directory")
    assert_user_error(bmoe("train", "--run-dir", a_file, *SMALL), "not a directory")
    empty = tmp_path / "empty"
    empty.mkdir()
    assert_user_error(bmoe("audit", empty), "chain.sqlite")
    (empty / "config.json").write_text("{not json")
    assert_user_error(bmoe("infer", empty), "config.json", "not valid JSON")
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "chain.sqlite").write_bytes(b"this is not a database" * 100)
    assert_user_error(bmoe("audit", broken), "chain.sqlite")


def test_cid_of_unreadable_file(tmp_path: Path) -> None:
    assert_user_error(bmoe("cid", tmp_path / "missing.bin"), "missing.bin")


def test_cid_matches_ipfs(tmp_path: Path) -> None:
    path = tmp_path / "hello.txt"
    path.write_bytes(b"hello world\n")
    result = bmoe("cid", path)
    assert result.returncode == 0
    assert result.stdout.strip() == "bafkreifjjcie6lypi6ny7amxnfftagclbuxndqonfipmb64f2km2devei4"
