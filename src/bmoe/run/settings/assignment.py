"""Assignment settings: which edges compute each activated expert (verify/assignment.py)."""

from __future__ import annotations

from bmoe.run.settings.limits import MAX_PARTIES, MAX_ROUNDS
from bmoe.run.settings.setting import Needs, Setting, train_and_up

ASSIGNMENTS = ("all", "sampled", "adaptive")
_SAMPLED = Needs("--assignment sampled or adaptive", lambda c: c.assignment != "all")
_ADAPTIVE = Needs("--assignment adaptive", lambda c: c.assignment == "adaptive")

ASSIGNMENT = (
    Setting("assignment", "str", "all", "the paper: every edge computes every activated expert", choices=ASSIGNMENTS,
            help="all (every edge computes every activated expert) | sampled (r edges per expert) | adaptive "
                 "(fewer where the drawn edges are trusted)",
            omit_when=lambda c: c.assignment == "all", flags=train_and_up()),
    Setting("replicas", "int", 3, "the smallest sample with a majority against one liar",
            help="r for --assignment sampled or adaptive", low=1, high=MAX_PARTIES, label="sampled replicas r",
            omit_when=lambda c: c.assignment == "all", needs=_SAMPLED, flags=train_and_up()),
    Setting("trusted_replicas", "int", 2, "two trusted edges still compare each other's answers",
            help="adaptive: the sample when the edges drawn are all trusted (at least 2)", low=2, high=MAX_PARTIES,
            label="adaptive replicas among trusted edges", omit_when=lambda c: c.assignment != "adaptive",
            needs=_ADAPTIVE, flags=train_and_up()),
    Setting("trust_after", "int", 20, "accepted answers in a row, since the last accusation, that earn trust",
            help="adaptive: accepted answers in a row, since an edge's last accusation, that earn it trust", low=1,
            high=MAX_ROUNDS * MAX_PARTIES, label="accepted answers that earn trust",
            omit_when=lambda c: c.assignment != "adaptive", needs=_ADAPTIVE, flags=train_and_up()),
)
