"""Every setting, by component: the one list that ``RunConfig``, its checks, its hash and the commands' flags
are read from.

A new setting is one declaration in its component's file (and the code that reads it); a new component is
one file and one line here.
"""

from __future__ import annotations

from collections.abc import Mapping

from bmoe.run.settings.assignment import ASSIGNMENT
from bmoe.run.settings.comparison import COMPARISON
from bmoe.run.settings.consensus import CONSENSUS
from bmoe.run.settings.data import DATA
from bmoe.run.settings.economics import ECONOMICS
from bmoe.run.settings.execution import EXECUTION
from bmoe.run.settings.fleet import FLEET
from bmoe.run.settings.ledger import LEDGER
from bmoe.run.settings.model import MODEL
from bmoe.run.settings.setting import Setting
from bmoe.run.settings.store import STORE

# component -> its settings, in the order config files and --print-config list them
GROUPS: Mapping[str, tuple[Setting, ...]] = {
    "data": DATA, "model": MODEL, "fleet": FLEET, "comparison": COMPARISON, "assignment": ASSIGNMENT,
    "economics": ECONOMICS, "consensus": CONSENSUS, "ledger": LEDGER, "store": STORE, "execution": EXECUTION,
}
DECLARED: tuple[Setting, ...] = tuple(setting for settings in GROUPS.values() for setting in settings)
SETTINGS: Mapping[str, Setting] = {setting.name: setting for setting in DECLARED}
GROUP_OF: Mapping[str, str] = {setting.name: group for group, settings in GROUPS.items() for setting in settings}
# Settings that change how a run executes, never what it records: left out of the recorded hash
EXECUTION_SETTINGS = frozenset(setting.name for setting in DECLARED if not setting.recorded)


def shown_in(command: str) -> tuple[Setting, ...]:
    """The settings ``command`` shows as flags, in declaration order."""
    return tuple(setting for setting in DECLARED if command in setting.flags)
