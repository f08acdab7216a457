"""``bmoe lm``'s subcommands: ``bmoe lm --help`` lists each (tests/test_imports.py checks each is listed as its own
help would list it)."""

from __future__ import annotations

import click

from bmoe.cli.lm import LM_COMMANDS, lm_group
from tests.cli.in_process import bmoe_here


def test_bmoe_lm_help_lists_every_command() -> None:
    listed = lm_group.list_commands(click.Context(lm_group))
    assert set(listed) == set(LM_COMMANDS) == {"data", "train", "sample", "export", "import", "attacks", "calibrate",
                                                 "cluster", "fetch", "generation-edge", "colluders"}
    shown = bmoe_here("lm", "--help")
    assert shown.returncode == 0 and all(name in shown.stdout for name in LM_COMMANDS)
