"""The ``bmoe`` command: every command and option group (``app.py`` holds the group and ``main``, the entry point)."""

from bmoe.cli.app import main

__all__ = ["main"]
