"""The click options of the settings a command shows, read off their declarations, and the settings they give.

Owns how a declaration becomes an option: its flag names (the command's spelling, else ``--NAME``), its type, a
boolean as ``--NAME/--no-NAME``, ``attack_params`` as repeatable ``NAME=NUMBER`` pairs, its default and help.
Under ``train`` every option holds the setting's default (shown in ``--help``); under ``cluster up`` and
``infer`` an option not given is None and the base config's value stands, so the help shows the default in
brackets. Each option's parameter is the setting's name: the cluster's flag map is the identity.

Must not know: the round, the disk, which command runs what.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

import click
from click.core import ParameterSource

from bmoe.run.config_checks import ConfigError
from bmoe.run.settings.registry import shown_in
from bmoe.run.settings.setting import IN_PLACE, INFER, PYTHON_TYPES, TRAIN, Setting

F = TypeVar("F", bound=Callable[..., Any])

# commands whose options overlay a base config: how their help shows what stands when a flag is not given
OVERLAY_DEFAULT = {INFER: "[the run's]"}
CLICK_TYPES: Mapping[str, Any] = {"positive": click.IntRange(min=1)}


def setting_options(command: str) -> Callable[[F], F]:
    """A decorator adding one option per setting ``command`` shows, in declaration order."""
    return options_of(shown_in(command), command)


def options_of(settings: Iterable[Setting], command: str) -> Callable[[F], F]:
    """A decorator adding one option per setting of ``settings``, in their order, as ``command`` spells them
    (``bmoe lm train`` shows its own settings and some of a run's under ``train``'s spelling)."""
    chosen = tuple(settings)

    def add(function: F) -> F:
        for setting in reversed(chosen):
            function = _option(setting, command)(function)
        return function
    return add


def _option(setting: Setting, command: str) -> Callable[[F], F]:
    flag = setting.flags[command]
    names = setting.flag_names(command)
    in_place = command in IN_PLACE
    help_text = flag.help or setting.help
    if not in_place:
        shown = OVERLAY_DEFAULT.get(command, flag.shown_default or _shown(setting, names[0]))
        help_text += f" [{shown}]" if shown and not shown.startswith("[") else f" {shown}" if shown else ""
    show_default: bool | str = (flag.shown_default or True) if in_place else False
    default = setting.default if in_place else None
    if setting.kind == "bool":
        long, *short = names
        return click.option(f"{long}/--no-{long[2:]}", *short, setting.name, default=default,
                            show_default=show_default, help=help_text)
    if setting.kind == "params":
        return click.option(*names, setting.name, multiple=True, help=help_text)
    kind = CLICK_TYPES[flag.click_type] if flag.click_type else click.Choice(setting.choices) if flag.choice else \
        PYTHON_TYPES[setting.kind]
    return click.option(*names, setting.name, type=kind, default=default, show_default=show_default, help=help_text)


def _shown(setting: Setting, flag: str) -> str:
    """The default as an overlay command's help shows it: a boolean by its flag, nothing for "none" or empty."""
    value = setting.default
    if isinstance(value, bool):
        return flag[2:] if value else f"no-{flag[2:]}"
    if value is None or value == {}:
        return ""
    return f"{value:g}" if isinstance(value, float) else str(value)


def given_settings(command: str, values: Mapping[str, Any]) -> dict[str, Any]:
    """The settings the user gave on ``command``'s command line, as config values (``attack_params`` parsed).

    ``values``: the command's parameters (others than settings are ignored). Under ``train`` a setting counts as
    given when click says it came from the command line; elsewhere, when it is not None."""
    given = {}
    for setting in shown_in(command):
        value = values.get(setting.name)
        if command == TRAIN:
            if click.get_current_context().get_parameter_source(setting.name) != ParameterSource.COMMANDLINE:
                continue
        elif value is None or value == ():
            continue
        given[setting.name] = parse_params(value) if setting.kind == "params" else value
    return given


def parse_params(pairs: Iterable[str]) -> dict[str, float]:
    """``["probability=1", "noise_std=0.5"]`` -> ``{"probability": 1.0, "noise_std": 0.5}``."""
    params: dict[str, float] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ConfigError(f"--attack-param must look like NAME=NUMBER, got {pair!r}")
        try:
            params[key] = float(value)
        except ValueError:
            raise ConfigError(f"--attack-param {key}: {value!r} is not a number") from None
    return params
