"""User errors with run directories and settings: one line, exit status 2, no traceback, and nothing
left behind that this invocation created (never removing what was there before)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from bmoe.run.config import ConfigError
from bmoe.run.run_dir import read_config_file
from bmoe.run.session import Session
from tests.cli.helpers import SMALL, assert_user_error
from tests.cli.in_process import bmoe_here as bmoe


def _tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


@pytest.mark.parametrize(("args", "needles"), [
    (["--rule", "sole"], ["sole"]),
    (["--lr", "inf"], ["lr"]), (["--lr", "nan"], ["lr"]), (["--balance", "-inf"], ["balance"]),
    (["--message-delay", "inf"], ["message_delay"]), (["--rule-fraction", "nan"], ["rule_fraction"]),
    (["--attack-param", "noise_std=nan"], ["noise_std"]), (["--attack-param", "probability=inf"], ["probability"]),
    (["--seed", str(2**64)], ["seed"]), (["--seed", "-1"], ["seed"]), (["--experts", "100000"], ["num_experts"]),
    (["--batch-size", "1000"], ["batch_size=1000", "512"]), (["--limit-train", "0"], ["limit_train"]),
    (["--limit-train", "100000"], ["limit_train=100000", "512"]), (["--limit-test", "100000"], ["limit_test"]),
])
def test_settings_that_make_no_sense_are_refused_before_the_run_directory_exists(
        tmp_path: Path, args: list[str], needles: list[str]) -> None:
    run_dir = tmp_path / "deep" / "run"
    assert_user_error(bmoe("train", "--run-dir", run_dir, "--rounds", "1", *SMALL, *args), *needles)
    assert _tree(tmp_path) == []


def test_a_run_directory_under_a_file_or_in_an_unwritable_place_is_one_line(tmp_path: Path) -> None:
    a_file = tmp_path / "somefile"
    a_file.write_text("x")
    result = bmoe("train", "--run-dir", a_file / "x", "--rounds", "1", *SMALL)
    assert_user_error(result, "above it is a file", "somefile")
    assert _tree(tmp_path) == ["somefile"]
    unwritable = Path("/sys/bmoe-run")
    if not unwritable.exists():
        assert_user_error(bmoe("train", "--run-dir", unwritable, "--rounds", "1", *SMALL), "cannot create")
        assert not unwritable.exists()


@pytest.mark.parametrize(("entry", "make"), [("store", "file"), ("chain.sqlite", "dir"), ("config.json", "dir")])
def test_an_entry_of_the_wrong_kind_in_the_run_directory_is_named_and_nothing_is_added(
        tmp_path: Path, entry: str, make: str) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / entry).mkdir() if make == "dir" else (run_dir / entry).write_text("x")
    assert_user_error(bmoe("train", "--run-dir", run_dir, "--rounds", "1", *SMALL), entry)
    assert _tree(run_dir) == [entry]


@pytest.mark.parametrize(("content", "needle"), [
    (b"null", "JSON object"), (b"3", "JSON object"), (b"[]", "JSON object"), (b'"text"', "JSON object"),
    (b"\xff\xfe{}", "UTF-8"), (b'{"num_experts": "4"}', "num_experts"), (b'{"seed": -1}', "seed"),
    (b'{"lr": 1e999}', "lr"), (b'{"attack_params": [1]}', "attack_params"), (b'{"nosuch": 1}', "nosuch"),
])
def test_a_config_json_that_is_not_an_object_of_valid_settings_is_a_config_error(
        tmp_path: Path, content: bytes, needle: str) -> None:
    path = tmp_path / "config.json"
    path.write_bytes(content)
    with pytest.raises(ConfigError, match=needle) as raised:
        read_config_file(path)
    assert "config.json" in str(raised.value) and "\n" not in str(raised.value)


def test_infer_on_a_run_directory_with_a_config_json_of_the_wrong_shape_is_one_line(tmp_path: Path) -> None:
    for content, needle in ((b"[1, 2]", "JSON object"), (b'{"batch_size": "100"}', "batch_size")):
        (tmp_path / "config.json").write_bytes(content)
        assert_user_error(bmoe("infer", tmp_path), "config.json", needle)
    assert _tree(tmp_path) == ["config.json"]


def test_a_failure_half_way_removes_what_this_invocation_created_and_nothing_else(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from bmoe.run import session as session_module
    from bmoe.run.config import RunConfig

    config = RunConfig(dataset="synthetic", num_experts=4, top_k=2, num_edges=5, batch_size=32, difficulty=4,
                       rounds=1, hidden=16)

    def fail(*args: object, **kwargs: object) -> None:
        raise ConfigError("injected failure while writing the genesis")

    monkeypatch.setattr(session_module, "write_genesis", fail)
    fresh = tmp_path / "parent" / "fresh"
    with pytest.raises(ConfigError, match="injected"):
        Session(config, run_dir=fresh)
    assert not (tmp_path / "parent").exists()
    existing = tmp_path / "existing"
    existing.mkdir()
    (existing / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match="injected"):
        Session(config, run_dir=existing)
    assert _tree(existing) == ["notes.txt"]
    monkeypatch.undo()
    resumable = tmp_path / "resumable"
    with Session(config, run_dir=resumable) as session:
        session.train()
    before = {p: p.read_bytes() for p in resumable.rglob("*") if p.is_file()}
    with pytest.raises(ConfigError, match="lr"):
        Session(config.replace(lr=math.pi), run_dir=resumable)
    assert {p: p.read_bytes() for p in resumable.rglob("*") if p.is_file()} == before
