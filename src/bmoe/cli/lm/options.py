"""The options several ``bmoe lm`` subcommands share: where the corpus is cached, and the language model's settings
(``run/settings/lm.py``) with the values they give."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import click

from bmoe.run.settings.lm import LM_SETTINGS
from bmoe.run.settings.options import options_of
from bmoe.run.settings.setting import LM_TRAIN

F = TypeVar("F", bound=Callable[..., Any])

cache_dir_option = click.option(
    "--cache-dir", type=click.Path(path_type=Path, file_okay=False), default=None,
    help="where the corpus's checked archive is cached (default: $BMOE_DATA_DIR, else ~/.cache/bmoe)")


def lm_options(command: F) -> F:
    """One option per language-model setting, as ``bmoe lm train`` spells it."""
    return options_of(LM_SETTINGS, LM_TRAIN)(command)


def lm_values(values: Mapping[str, Any]) -> dict[str, Any]:
    """The language-model settings among a command's parameters, by name."""
    return {setting.name: values[setting.name] for setting in LM_SETTINGS}
