"""Execution settings: how long and how fast a run goes, never what its ledger records (outside the hash).

So the ledger is identical with compute sharing on and off, with more rounds resumed, or with another stall alarm.
"""

from __future__ import annotations

from bmoe.protocol.quorum_watch import DEFAULT_STALL_AFTER
from bmoe.run.settings.limits import MAX_ROUNDS, MAX_THREADS
from bmoe.run.settings.setting import CLUSTER_UP, TRAIN, Flag, Setting, train_and_up

EXECUTION = (
    Setting("rounds", "int", 100, "T training rounds (paper: 1500)", help="training rounds T", low=1,
            high=MAX_ROUNDS, recorded=False, flags=train_and_up(up=Flag(help="default rounds for `publish`"))),
    Setting("share_compute", "bool", True, "compute identical honest replicas once (exact; see edge/runtime)",
            help="compute identical honest replicas once", recorded=False, flags={TRAIN: Flag()}),
    Setting("threads", "int", 1, "bit-exact agreement needs the same count on every edge",
            help="torch threads (bit-exact agreement needs equal counts on every edge)", low=1, high=MAX_THREADS,
            recorded=False, flags=train_and_up(up=Flag(help="torch threads per process"))),
    Setting("eval_every", "int", 10, "rounds between test-set evaluations", help="rounds between test evaluations",
            low=1, high=MAX_ROUNDS, recorded=False, flags={TRAIN: Flag()}),
    Setting("stall_after", "int", DEFAULT_STALL_AFTER,
            "protocol/quorum_watch.py: a persistent split reaches 10 in 10 rounds, a 0.2-probability attacker by "
            "chance ~never", help="stop (exit 3, 'quorum stalled') after N tasks in a row without quorum; 0: never",
            low=0, high=MAX_ROUNDS, label="tasks without quorum before a stall", recorded=False,
            flags={TRAIN: Flag(shown_default=f"{DEFAULT_STALL_AFTER}; on a cluster: set by `bmoe cluster up`"),
                   CLUSTER_UP: Flag(help="the validator reports a stall after N tasks in a row without quorum "
                                    "(`cluster status` exits 3, `bmoe train --cluster` stops with exit 3); 0: never")}),
)
