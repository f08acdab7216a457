"""``bmoe lm``'s subcommands are lazy: each is listed as its own help would list it, and ``bmoe lm --help`` imports
none of them."""

from __future__ import annotations

import click
import pytest

from bmoe.cli.lm import LM_COMMANDS, lm_group
from tests.cli.in_process import bmoe_here


@pytest.mark.parametrize("name", sorted(LM_COMMANDS))
def test_a_language_model_command_is_listed_as_its_own_help_would_list_it(name: str) -> None:
    command = LM_COMMANDS[name].load()
    stand_in = click.Command(name, help=LM_COMMANDS[name].summary)
    for limit in (30, 45, 70, 10_000):
        assert stand_in.get_short_help_str(limit) == command.get_short_help_str(limit)


def test_bmoe_lm_help_lists_every_command() -> None:
    listed = lm_group.list_commands(click.Context(lm_group))
    assert set(listed) == set(LM_COMMANDS) == {"data", "train", "sample", "export", "import", "attacks", "calibrate"}
    shown = bmoe_here("lm", "--help")
    assert shown.returncode == 0 and all(name in shown.stdout for name in LM_COMMANDS)
