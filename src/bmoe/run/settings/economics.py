"""Economics settings: stake, rewards and slashing (ledger/economics.py); without a stake, none of them."""

from __future__ import annotations

from bmoe.ledger.economics import MAX_UNITS
from bmoe.run.settings.setting import Flag, Needs, Setting, train_and_up


def _no_stake(config: object) -> bool:
    return not config.stake


_STAKE = Needs("--stake", lambda c: c.stake > 0)

ECONOMICS = (
    Setting("stake", "int", 0, "no economics: the paper has none",
            help="each edge's stake at enrolment, whole units (0: no stake, rewards or slashing)", low=0,
            high=MAX_UNITS, label="stake per edge", omit_when=_no_stake,
            flags=train_and_up(up=Flag(help="each edge's stake, whole units", shown_default="0: no economics"))),
    Setting("reward", "int", 1, "one unit per answer in an accepted group",
            help="units per answer in an accepted group", low=0, high=MAX_UNITS, label="reward per accepted answer",
            omit_when=_no_stake, needs=_STAKE,
            flags=train_and_up()),
    Setting("slash", "int", 100, "a proven dissent costs far more than an answer earns",
            help="units taken per proven dissent", low=0, high=MAX_UNITS, label="slash per proven dissent",
            omit_when=_no_stake, needs=_STAKE, flags=train_and_up()),
    Setting("min_stake", "int", 0, "every edge stays assignable", help="an edge holding less is no longer assigned",
            low=0, high=MAX_UNITS, label="minimum stake to be assigned", omit_when=_no_stake, flags=train_and_up()),
)
