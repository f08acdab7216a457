"""A click group whose subcommands are imported when they are run, not when the program starts.

:class:`LazyGroup` maps command names to a :class:`LazyCommand` (``"module:attribute"`` and the line
the group's ``--help`` shows for it) and imports a command only when click asks for it by name, to
run it or show its own ``--help``. Listing the commands for the group's ``--help`` uses the stated
lines and imports nothing. So ``bmoe --help``, ``bmoe --version`` and a bad flag of ``bmoe store``
load only what they need (click's documentation calls this pattern LazyGroup).

Must not know: which commands exist or what they do.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import click
from click.exceptions import NoSuchCommand


@dataclass(frozen=True)
class LazyCommand:
    """Where a command lives (``"module:attribute"``) and its help's first sentence, as the group lists it."""

    target: str
    summary: str

    def load(self) -> click.Command:
        module_name, _, attribute = self.target.partition(":")
        command = getattr(importlib.import_module(module_name), attribute)
        if not isinstance(command, click.Command):
            raise TypeError(f"{self.target} is not a click command")
        return command


class LazyGroup(click.Group):
    """A group with eager commands (``add_command``) and lazy ones (``lazy_commands``: name -> LazyCommand)."""

    def __init__(self, *args: Any, lazy_commands: Mapping[str, LazyCommand] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy_commands = dict(lazy_commands or {})
        self._listing = False

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy_commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        lazy = self.lazy_commands.get(cmd_name)
        if lazy is not None and cmd_name not in self.commands:
            if self._listing:  # the group's --help: the stated line stands in for the command
                return click.Command(cmd_name, help=lazy.summary)
            self.add_command(lazy.load(), cmd_name)
        return super().get_command(ctx, cmd_name)

    def resolve_command(self, ctx: click.Context, args: list[str]) -> tuple[str | None, click.Command | None,
                                                                            list[str]]:
        try:
            return super().resolve_command(ctx, args)
        except NoSuchCommand as err:  # suggest among every command, loaded or not ("Did you mean 'store'?")
            raise NoSuchCommand(err.command_name, possibilities=self.list_commands(ctx), ctx=ctx) from None

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        with self._listing_commands():
            super().format_commands(ctx, formatter)

    @contextmanager
    def _listing_commands(self) -> Iterator[None]:
        self._listing = True
        try:
            yield
        finally:
            self._listing = False
