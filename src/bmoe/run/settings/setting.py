"""What a setting is: one frozen declaration from which everything else about it is derived.

Owns the ``Setting`` record (type, default and its reason, range, help, whether the ledger's hash records it
and when it is left out, which flag of which command shows it, which other setting it needs to act) and the
``Flag`` record (how one command spells it). The declarations themselves live one file per component beside
this one; ``RunConfig``'s fields, the range checks, the hash rule, the execution settings, the click options
of ``train``, ``cluster up`` and ``infer``, the cluster's flag map and the flags without effect are read off
them.

Must not know: click (``options.py`` turns declarations into options), the round, the disk.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

# The commands that show settings as flags.
TRAIN = "train"  # every setting with its default in place; a --config file overrides the defaults
CLUSTER_UP = "cluster up"  # flags override a base config (--config), so each flag's default is None: not given
INFER = "infer"  # flags override the run directory's config, as cluster up's do
LM_TRAIN = "lm train"  # a language model's settings (run/settings/lm.py), each default in place as under train
IN_PLACE = frozenset({TRAIN, LM_TRAIN})  # commands whose options hold the settings' defaults (not overlays)


@dataclass(frozen=True)
class Flag:
    """How one command spells a setting: its flag names (empty: ``--NAME`` with dashes), help where the
    setting's own does not fit that command, the default as shown where the value alone would mislead, and
    whether the command offers the setting's choices as a click choice."""

    names: tuple[str, ...] = ()
    help: str = ""
    shown_default: str = ""
    choice: bool = False
    click_type: Any = None  # e.g. click.IntRange(min=1): a bound click checks before the config does


@dataclass(frozen=True)
class Needs:
    """Another setting without which this one has no effect: the flag that gives it, and whether a config has it."""

    what: str  # e.g. "--assignment sampled or adaptive"
    present: Callable[[Any], bool]


@dataclass(frozen=True)
class Setting:
    """One field of ``RunConfig``, declared once."""

    name: str
    kind: str  # "int" | "float" | "bool" | "str" | "params"
    default: Any
    reason: str  # why the default is what it is (often the paper's section)
    help: str = ""
    low: float | None = None
    high: float | None = None
    low_open: bool = False  # (low, high] instead of [low, high]
    high_open: bool = False  # [low, high) instead of [low, high]
    nullable: bool = False
    label: str = ""  # how the docs call it, e.g. "experts N"
    choices: tuple[str, ...] = ()  # the values it may take (a string setting), checked with the whole config
    recorded: bool = True  # False: an execution setting, never in the config's hash (the ledger is the same)
    omit_when: Callable[[Any], bool] | None = None  # left out of the hash for such a config (as before it existed)
    needs: Needs | None = None  # a flag given without this has no effect and is refused (flag_effects)
    flags: Mapping[str, Flag] = field(default_factory=dict)  # command -> its spelling; absent: not shown there

    def interval(self) -> str:
        return f"{'(' if self.low_open else '['}{_num(self.low)}, {_num(self.high)}{')' if self.high_open else ']'}"

    def hashed(self, config: Any) -> bool:
        """Whether ``config``'s hash covers this setting."""
        return self.recorded and (self.omit_when is None or not self.omit_when(config))

    def flag_names(self, command: str) -> tuple[str, ...]:
        names = self.flags[command].names
        return names if names else ("--" + self.name.replace("_", "-"),)


def train_and_up(**flags: Flag) -> dict[str, Flag]:
    """Shown by ``bmoe train`` and ``bmoe cluster up`` under the same flag (``flags``: a command's own spelling,
    ``train=`` or ``up=``)."""
    return {TRAIN: flags.get("train", Flag()), CLUSTER_UP: flags.get("up", Flag())}


def _num(value: float | None) -> str:
    return "-inf" if value is None else f"{value:g}" if isinstance(value, float) else f"{value}"


PYTHON_TYPES: Mapping[str, Any] = {"int": int, "float": float, "bool": bool, "str": str, "params": dict[str, float]}
