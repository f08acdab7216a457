"""Imports that cost nothing: the ledger, storage, verification, consensus and a storage node load no torch.

Each import runs in a fresh interpreter (``sys.executable -c``), since this test session has long
loaded torch; the tests assert on which modules got loaded, not on seconds (speed is measured in
benchmarks/ and docs/performance.md).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import click
import pytest

import bmoe
from bmoe.cli.app import SERVICE_COMMANDS, app
from bmoe.cli.lm import LM_COMMANDS
from bmoe.edge.fleet import CPU_PROFILE_NAMES, parse_fleet
from bmoe.edge.profiles import PROFILES
from bmoe.moe import experts, presets
from tests.cli.in_process import bmoe_here

HEAVY = ("torch", "matplotlib", "starlette", "uvicorn")
_SOURCE = str(Path(bmoe.__file__).resolve().parents[1])  # the tree under test, for the child interpreter


def _loaded_after(code: str) -> set[str]:
    """The heavy modules loaded in a fresh interpreter by ``code``."""
    probe = f"{code}\nimport json, sys\nprint(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([_SOURCE, os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    return set(json.loads(done.stdout.splitlines()[-1]))


@pytest.mark.parametrize("module", ["bmoe", "bmoe.ledger", "bmoe.ledger.state", "bmoe.storage", "bmoe.verify",
                                    "bmoe.consensus", "bmoe.run.config"])
def test_core_packages_import_without_torch_or_web_stacks(module: str) -> None:
    assert _loaded_after(f"import {module}") == set()


def test_storage_node_imports_without_torch() -> None:
    assert _loaded_after("import bmoe.net.store.command") <= {"starlette", "uvicorn"}


def test_a_config_reads_its_fleet_without_torch() -> None:
    code = ("from bmoe.run.config import RunConfig\n"
            "assert RunConfig(fleet='threads1=4,f64=6').edge_profiles == ('threads1',) * 4 + ('f64',) * 6")
    assert _loaded_after(code) == set()


def _run_cli(*args: str) -> str:
    """Code that runs ``bmoe ARGS`` as the command would, then lets the probe look at sys.modules."""
    return (f"import sys\nsys.argv = ['bmoe', *{list(args)!r}]\nfrom bmoe.cli import main\n"
            "try:\n    main()\nexcept SystemExit as exit_info:\n    assert exit_info.code in (0, 2), exit_info.code\n")


@pytest.mark.parametrize("args", [("--help",), ("--version",), ("cid", "--bogus"), ("train", "--bogus")])
def test_the_command_line_starts_without_torch(args: tuple[str, ...]) -> None:
    assert _loaded_after(_run_cli(*args)) == set()


def test_a_storage_node_command_loads_no_torch() -> None:
    assert _loaded_after(_run_cli("store", "--bogus")) <= {"starlette", "uvicorn"}
    assert _loaded_after(_run_cli("store", "--help")) <= {"starlette", "uvicorn"}


# every lazy group's commands, by their command line
LAZY_COMMANDS = {**SERVICE_COMMANDS, **{f"lm {name}": lazy for name, lazy in LM_COMMANDS.items()}}


@pytest.mark.parametrize("name", sorted(LAZY_COMMANDS))
def test_a_lazy_command_is_listed_as_its_own_help_would_list_it(name: str) -> None:
    command = LAZY_COMMANDS[name].load()
    stand_in = click.Command(name, help=LAZY_COMMANDS[name].summary)
    for limit in (30, 45, 70, 10_000):
        assert stand_in.get_short_help_str(limit) == command.get_short_help_str(limit)
    assert not command.hidden


def test_bmoe_help_lists_every_command_once() -> None:
    listed = app.list_commands(click.Context(app))
    assert listed == sorted(set(listed))
    assert set(SERVICE_COMMANDS) <= set(listed)
    assert {"demo", "train", "infer", "cid", "reproduce", "keygen"} <= set(listed)


def test_a_mistyped_command_is_suggested_among_the_lazy_ones() -> None:
    done = bmoe_here("stor")
    assert done.returncode == 2
    assert done.stderr.strip() == "error: No such command 'stor'. Did you mean 'store'?"


def test_the_torch_free_names_are_the_registrys() -> None:
    assert tuple(PROFILES)[:len(CPU_PROFILE_NAMES)] == CPU_PROFILE_NAMES
    assert experts.PRESETS is presets.PRESETS
    assert parse_fleet("default=2,nodnn=1", 3) == ("default", "default", "nodnn")


def test_the_public_api_loads_on_first_use() -> None:
    from bmoe import RunConfig, Session

    assert Session.__module__ == "bmoe.run.session"
    assert RunConfig.__module__ == "bmoe.run.config"
    assert set(bmoe.__all__) <= set(dir(bmoe))
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        bmoe.nothing  # noqa: B018
