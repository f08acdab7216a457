"""The command line's own user error: reported by ``bmoe.cli.app.main`` in one line, exit status 2."""

from __future__ import annotations

EXIT_USAGE = 2


class UserError(Exception):
    """An error caused by the user's input; reported in one line, exit status 2."""


def fail(message: str) -> None:
    raise UserError(message)
