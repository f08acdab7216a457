"""A click group whose subcommands are imported when they are run, not when the program starts.

:class:`LazyGroup` maps command names to ``"module:attribute"`` and imports a command only when
click asks for it by name (to run it, or to show its ``--help``); listing the commands for the
group's own ``--help`` imports each one, for its short help. So ``bmoe --version``, ``bmoe cid``
and a bad flag of ``bmoe store`` load only what they need (click's documentation calls this
pattern LazyGroup).

Must not know: which commands exist or what they do.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

import click


class LazyGroup(click.Group):
    """A group with eager commands (``add_command``) and lazy ones (``lazy_commands``: name -> "module:attr")."""

    def __init__(self, *args: Any, lazy_commands: Mapping[str, str] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy_commands = dict(lazy_commands or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy_commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy_commands and cmd_name not in self.commands:
            module_name, _, attribute = self.lazy_commands[cmd_name].partition(":")
            command = getattr(importlib.import_module(module_name), attribute)
            if not isinstance(command, click.Command):
                raise TypeError(f"{self.lazy_commands[cmd_name]} is not a click command")
            self.add_command(command, cmd_name)
        return super().get_command(ctx, cmd_name)
