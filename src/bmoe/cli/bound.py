"""``bmoe bound``: how many sampled replicas per (task, expert) keep a colluding fraction f from getting
a manipulated result accepted with probability above epsilon (``verify/sampling_bound.py``)."""

from __future__ import annotations

import json

import click

from bmoe.console import console
from bmoe.verify.sampling_bound import BoundError, bound_table, colluders, replicas_needed


class BoundInputError(click.UsageError):
    """Bad flags: one line, exit 2."""


@click.command("bound")
@click.option("--f", "fraction", type=float, required=True,
              help="colluding fraction of the edges, in [0, 1) (escalation holds below 0.5)")
@click.option("--epsilon", type=float, required=True, help="the escape probability to stay under, per decision")
@click.option("--edges", "-m", type=int, default=None,
              help="M: draws without replacement among M edges (default: a large fleet, f^r)")
@click.option("--decisions", type=int, default=1000, show_default=True,
              help="tasks x activated experts of a run, for the chance that any manipulation escapes")
@click.option("--json", "as_json", is_flag=True, help="print the numbers as JSON")
def bound_command(fraction: float, epsilon: float, edges: int | None, decisions: int, as_json: bool) -> None:
    """The replicas r that sampled replication needs, and the escape probability per r."""
    try:
        needed = replicas_needed(fraction, epsilon, edges)
        rows = bound_table(fraction, edges, decisions, most=max(needed or 0, 6))
    except BoundError as err:
        raise BoundInputError(str(err)) from None
    fleet = f"M = {edges} edges, {colluders(fraction, edges)} colluding" if edges else "a large fleet"
    if as_json:
        print(json.dumps({"f": fraction, "epsilon": epsilon, "edges": edges, "decisions": decisions,
                          "replicas_needed": needed,
                          "rows": [{"replicas": r.replicas, "per_decision": r.per_decision, "per_run": r.per_run}
                                   for r in rows]}, indent=2))
        return
    console.print(f"f = {fraction}, {fleet}: a manipulated result escapes only if all r sampled replicas "
                  "collude; a dispute escalates it to all M, decided by the majority.", highlight=False)
    for row in rows:
        console.print(f"  r = {row.replicas}: {row.per_decision:.3g} per decision, {row.per_run:.3g} over "
                      f"{decisions} decisions", highlight=False)
    if needed is None:
        console.print(f"no r reaches {epsilon:g}: colluders at half the fleet or more win the escalation, "
                      "or the fleet is too small", highlight=False)
    else:
        console.print(f"r = {needed} keeps the escape probability at or below {epsilon:g} per decision",
                      highlight=False)
