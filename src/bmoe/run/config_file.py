"""A run described by a file: ``bmoe train --config run.toml`` reads one, ``--print-config`` writes one.

Owns the TOML form of a run's settings. A file holds setting names (``RunConfig``'s fields) with their values,
either at the top or in a table named by the setting's component (``[data]``, ``[model]``, ``[fleet]``,
``[comparison]``, ``[assignment]``, ``[economics]``, ``[consensus]``, ``[ledger]``, ``[store]``,
``[execution]``: run/settings/registry.GROUPS); a setting in another component's table, a setting given twice,
an unknown key or table is refused in one line naming it. A setting left out keeps its default; a setting
whose value is "none" (``limit_train``, ``data_dir``, ...) is left out. ``--print-config`` writes every
setting, by component, so that reading it back gives the same config and the same hash. ``bmoe cluster up
--config`` reads a file ending in ``.toml`` this way, any other as the JSON of a run's ``config.json``.

Must not know: click, the commands' flags.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bmoe.run.config import ConfigError, RunConfig, from_dict
from bmoe.run.run_dir import read_config_file, read_config_text
from bmoe.run.settings.registry import GROUP_OF, GROUPS


def read_settings_file(path: Path) -> dict[str, Any]:
    """The settings a TOML file gives, by name (not yet checked against each other: see ``from_dict``)."""
    text = read_config_text(path)
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"config file {path}: not valid TOML ({err})") from None
    settings: dict[str, Any] = {}
    for key, value in document.items():
        if key in GROUPS and isinstance(value, dict):
            for name, inner in value.items():
                if GROUP_OF.get(name) != key:
                    where = f"belongs to [{GROUP_OF[name]}]" if name in GROUP_OF else "is no setting"
                    raise ConfigError(f"config file {path}: [{key}] {name}: {where}")
                _put(settings, name, inner, path)
        elif key in GROUP_OF:
            _put(settings, key, value, path)
        else:
            raise ConfigError(f"config file {path}: unknown setting {key!r}")
    return settings


def _put(settings: dict[str, Any], name: str, value: Any, path: Path) -> None:
    if name in settings:
        raise ConfigError(f"config file {path}: {name} is given twice")
    settings[name] = value


def read_run_config(path: Path) -> RunConfig:
    """The validated config a file describes: TOML (``.toml``, over the defaults), else a run's JSON config."""
    if path.suffix != ".toml":
        return read_config_file(path)
    settings = read_settings_file(path)
    try:
        return from_dict({**RunConfig().to_dict(), **settings})
    except ConfigError as err:
        raise ConfigError(f"config file {path}: {err}") from None


def config_toml(config: RunConfig) -> str:
    """``config`` as a TOML document, one table per component (settings that are "none" left out)."""
    values = config.to_dict()
    lines = ["# the effective settings of a run: bmoe train --config FILE reads them back (docs/configuration.md)"]
    for group, settings in GROUPS.items():
        given = [f"{setting.name} = {_toml_value(values[setting.name])}" for setting in settings
                 if values[setting.name] is not None]
        lines += ["", f"[{group}]", *given] if given else []
    return "\n".join(lines) + "\n"


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)  # finite (validated): Python's repr is a TOML integer or float
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")  # a TOML basic string
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{json.dumps(str(key))} = {_toml_value(item)}" for key, item in value.items()) + "}"
    raise TypeError(f"no TOML form for {value!r}")
