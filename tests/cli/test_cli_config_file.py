"""``bmoe train --config run.toml`` and ``--print-config``: a run described by a file, flags over the file,
unknown keys and wrong types refused in one line (exit 2); ``cluster up --config`` reads the same TOML."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from bmoe.run.config import RunConfig, from_dict
from bmoe.run.config_file import read_run_config
from tests.cli.helpers import SMALL, assert_user_error, bmoe
from tests.cli.in_process import bmoe_here


def _printed(*args: str | Path) -> RunConfig:
    result = bmoe_here("train", "--print-config", *args)
    assert result.returncode == 0, result.stderr
    return from_dict({**RunConfig().to_dict(), **_flat(tomllib.loads(result.stdout))})


def _flat(document: dict[str, object]) -> dict[str, object]:
    return {key: value for table in document.values() for key, value in table.items()}  # type: ignore[union-attr]


def test_print_config_writes_the_defaults_and_the_flags_given() -> None:
    assert _printed() == RunConfig()
    assert _printed("-n", "6", "-k", "2", "--attack-param", "probability=0.5", "--no-collude") == \
        RunConfig(num_experts=6, top_k=2, attack_params={"probability": 0.5}, collude=False)


def test_the_printed_config_reads_back_to_the_same_config_and_hash(tmp_path: Path) -> None:
    flags = [*SMALL, "--assignment", "adaptive", "--replicas", "4", "--stake", "50", "--slash", "7",
             "--comparison", "tolerance", "--bound", "0.05", "--malicious-ratio", "0.2", "--fleet", "default=5"]
    first = bmoe_here("train", "--print-config", *flags)
    assert first.returncode == 0, first.stderr
    (tmp_path / "run.toml").write_text(first.stdout)
    again = bmoe_here("train", "--print-config", "--config", tmp_path / "run.toml")
    assert again.stdout == first.stdout
    assert read_run_config(tmp_path / "run.toml").hash() == _printed(*flags).hash()
    assert read_run_config(tmp_path / "run.toml").hash() != RunConfig().hash()


def test_flags_override_the_file_and_sections_or_flat_keys_both_read(tmp_path: Path) -> None:
    (tmp_path / "run.toml").write_text('seed = 5\n[model]\nnum_experts = 6\ntop_k = 2\n[execution]\nrounds = 3\n')
    assert _printed("--config", tmp_path / "run.toml", "--seed", "9") == \
        RunConfig(seed=9, num_experts=6, top_k=2, rounds=3)
    assert _printed("--config", tmp_path / "run.toml") == RunConfig(seed=5, num_experts=6, top_k=2, rounds=3)


@pytest.mark.parametrize(("text", "needle"), [
    ("expertz = 4\n", "unknown setting 'expertz'"),
    ("[model]\nseed = 1\n", "[model] seed: belongs to [data]"),
    ("[model]\nwidth = 1\n", "[model] width: is no setting"),
    ("seed = 1\n[data]\nseed = 2\n", "seed is given twice"),
    ("rounds = \"many\"\n", "rounds must be an integer"),
    ("collude = 1\n", "collude must be true or false"),
    ("top_k = 20\n", "K=20 must be in [1, N=10]"),
    ("seed = \n", "not valid TOML"),
])
def test_a_bad_file_is_refused_in_one_line(tmp_path: Path, text: str, needle: str) -> None:
    (tmp_path / "run.toml").write_text(text)
    result = bmoe_here("train", "--run-dir", tmp_path / "run", "--config", tmp_path / "run.toml")
    assert_user_error(result, needle)
    assert not (tmp_path / "run").exists()


def test_a_missing_file_is_refused_in_one_line(tmp_path: Path) -> None:
    assert_user_error(bmoe_here("train", "--print-config", "--config", tmp_path / "nope.toml"), "nope.toml")


def test_a_run_trains_from_a_file(tmp_path: Path) -> None:
    """A real subprocess: the file's settings are the run's (its config.json), the flag given overrides one."""
    printed = bmoe_here("train", "--print-config", *SMALL, "--rounds", "5")
    (tmp_path / "run.toml").write_text(printed.stdout)
    result = bmoe("train", "--run-dir", tmp_path / "run", "--config", tmp_path / "run.toml", "--rounds", "2")
    assert result.returncode == 0, result.stderr
    recorded = read_run_config(tmp_path / "run" / "config.json")
    assert recorded == read_run_config(tmp_path / "run.toml").replace(rounds=2)


def test_cluster_up_refuses_a_bad_toml_base_before_writing(tmp_path: Path) -> None:
    (tmp_path / "run.toml").write_text("expertz = 4\n")
    result = bmoe_here("cluster", "up", "--dir", tmp_path / "cluster", "--config", tmp_path / "run.toml")
    assert_user_error(result, "unknown setting 'expertz'")
    assert not (tmp_path / "cluster").exists()
