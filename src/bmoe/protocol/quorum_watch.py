"""Watching for a deployment that stops reaching quorum: a named stall instead of silence.

Owns one counter and its rule. A task *fails to reach quorum* when any of its decisions (result or
update, any expert) is ``no_quorum``: no group of answers met the acceptance rule, so that expert's
share of the task was lost and, since nothing is proven then, nobody was recorded against
(``verify/phase.py``). A tie between colluders and honest edges, attackers plus a crashed honest
edge, or honest edges split by a bound set too tight all look like this, task after task. After
``stall_after`` such tasks in a row the deployment is *stalled*: ``bmoe train`` stops with
:class:`QuorumStalled` (exit 3, as for a consensus stall), a validator reports it in ``/stats`` and in
each sealed task's status (``bmoe cluster status`` shows it), and the explorer shows it over the chain.

The watch reads sealed ledger states only (the tasks of the latest block, with their verdicts), so
the in-process session, a validator process and the explorer count alike. It changes nothing that is
recorded: ``stall_after`` is an execution setting, left out of the config hash.

Must not know HTTP, processes or tensors.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from bmoe.ledger.state import LedgerState, TaskState

# Ten tasks in a row: an intermittent attacker striking with the paper's probability 0.2 (Sec. V) ties a
# task by chance in 0.2^10 ~ 1e-7 of such windows, while a persistent split (a tie, a crashed honest edge
# beside attackers, a bound too tight) does it every task, so ten is reached within ten rounds.
DEFAULT_STALL_AFTER = 10


class QuorumStalled(RuntimeError):
    """Results kept failing to reach quorum: ``stall_after`` tasks in a row (one line)."""


@dataclass(frozen=True)
class NoQuorum:
    """One ``no_quorum`` decision, as evidence: where, and the sizes of the groups the answers formed."""

    task_id: str
    phase: str
    expert: int
    sizes: tuple[int, ...]  # largest first; the groups themselves are recorded in the decision
    missing: int  # assigned edges that committed nothing

    def describe(self) -> str:
        groups = ", ".join(str(size) for size in self.sizes) or "none"
        return (f"task {self.task_id}, {self.phase} of expert {self.expert}: groups of {groups}"
                f"{f', {self.missing} silent' if self.missing else ''}")

    def to_dict(self) -> dict[str, Any]:
        return {"task_id": self.task_id, "phase": self.phase, "expert": self.expert, "sizes": list(self.sizes),
                "missing": self.missing}


def no_quorum_decisions(task: TaskState) -> list[NoQuorum]:
    """Every ``no_quorum`` decision of ``task`` (a verdict without a digest), in phase and expert order."""
    return [NoQuorum(task.task_id, phase, expert, tuple(sorted(verdict.group_sizes.values(), reverse=True)),
                     len(verdict.missing))
            for phase, verdicts in task.verdicts.items() for expert, verdict in sorted(verdicts.items())
            if verdict.digest is None]


@dataclass
class QuorumWatch:
    """How many tasks in a row failed to reach quorum, and whether that is a stall."""

    stall_after: int = DEFAULT_STALL_AFTER  # 0: never stall
    streak: int = 0
    total: int = 0  # tasks without quorum since the watch started
    last: NoQuorum | None = None
    height: int = -1  # the last block observed

    def observe(self, state: LedgerState) -> None:
        """Count the tasks of ``state``'s latest block, once however often that block is observed."""
        if state.height <= self.height:
            return
        self.height = state.height
        self.observe_tasks(state.tasks.values())

    def observe_tasks(self, tasks: Iterable[TaskState]) -> None:
        """Count ``tasks`` in order: each without quorum extends the streak, each with quorum ends it."""
        for task in tasks:
            failed = no_quorum_decisions(task)
            if failed:
                self.streak += 1
                self.total += 1
                self.last = failed[0]
            else:
                self.streak = 0

    @property
    def stalled(self) -> bool:
        return self.stall_after > 0 and self.streak >= self.stall_after

    def message(self) -> str:
        """The stall in one line (meaningful when :attr:`stalled`)."""
        last = f" (last: {self.last.describe()})" if self.last is not None else ""
        return (f"quorum stalled: {self.streak} tasks in a row reached no quorum{last}; nobody is slashed "
                "for it, so find the cause (attackers tying the honest edges, an edge down, a comparison bound "
                "too tight for the fleet) or raise --stall-after")

    def check(self) -> None:
        """Raise :class:`QuorumStalled` when the stall is reached."""
        if self.stalled:
            raise QuorumStalled(self.message())

    def to_dict(self) -> dict[str, Any]:
        """The watch for ``/stats`` and a sealed task's status."""
        return {"no_quorum_streak": self.streak, "no_quorum_tasks": self.total, "stall_after": self.stall_after,
                "stalled": self.stalled, "stall": self.message() if self.stalled else None,
                "last_no_quorum": None if self.last is None else self.last.to_dict()}
