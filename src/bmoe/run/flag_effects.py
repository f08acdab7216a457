"""Settings that only act beside another: given without it, a flag is refused, never silently ignored.

Owns the refusal of a setting given without the other one it needs to have any effect (``--replicas`` acts
only under a sampled assignment, ``--slash`` only with a ``--stake``, ...: each declaration's ``needs``), in one
line. The command line says which settings the user gave (click's parameter source, a cluster's non-default
options); the values alone cannot: ``--replicas 3`` is also the default.

Must not know: click, or how a setting is spelled beyond its flag.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from bmoe.run.config import ConfigError, RunConfig
from bmoe.run.settings.registry import DECLARED

# setting -> (what it needs, whether the config has it), from the declarations (run/settings/)
NEEDS: dict[str, tuple[str, Callable[[RunConfig], bool]]] = {
    setting.name: (setting.needs.what, setting.needs.present) for setting in DECLARED if setting.needs is not None}


def flag_of(setting: str) -> str:
    return "--" + setting.replace("_", "-")


def check_given_settings(config: RunConfig, given: Iterable[str]) -> None:
    """Refuse the first of ``given`` (settings the user named) that ``config`` gives no effect."""
    for setting in given:
        if setting in NEEDS:
            needed, present = NEEDS[setting]
            if not present(config):
                raise ConfigError(f"{flag_of(setting)} has no effect without {needed}: give {needed.split(' or ')[0]}, "
                                  f"or drop {flag_of(setting)}")
