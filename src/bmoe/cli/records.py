"""``bmoe records PATH [--json]``: each edge's track record and account, derived by replaying the chain.

PATH is a run directory, or a cluster directory (``bmoe cluster up --dir``), whose longest validator
chain is read. Nothing here is trusted from a file but the blocks themselves: the state machine replays
them from the genesis (``ledger/state.py``), as ``bmoe audit`` does before it also checks seals and
objects. Without ``--stake`` in the run, the account columns are absent. A paid generation session (its genesis
takes payments: ``run/payments.py``) adds a table of what each participant deposited, paid and earned.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
from rich.table import Table

from bmoe.console import console
from bmoe.ledger.errors import LedgerError
from bmoe.ledger.snapshot import chain_snapshot
from bmoe.ledger.state import LedgerState, apply_block
from bmoe.run.config import ConfigError
from bmoe.run.payments import bill
from bmoe.run.session import CHAIN_FILE


class RecordsError(ConfigError):
    """The path is not a run or cluster directory, or its chain does not replay (one line, exit 2)."""


def chain_paths(path: Path) -> list[Path]:
    """The chain file(s) behind ``path``: a run directory's, or every validator's of a cluster directory."""
    from bmoe.net.cluster_file import CLUSTER_FILE, load_cluster

    if not path.is_dir():
        raise RecordsError(f"{path} does not exist or is not a directory")
    if (path / CHAIN_FILE).is_file():
        return [path / CHAIN_FILE]
    if (path / CLUSTER_FILE).is_file():
        cluster = load_cluster(path)
        found = [cluster.run_dir(r) / CHAIN_FILE for r in cluster.by_role("validator")]
        found = [p for p in found if p.is_file()]
        if found:
            return found
        raise RecordsError(f"{path}: no validator of the cluster has a chain yet")
    raise RecordsError(f"{path} has no {CHAIN_FILE} and no {CLUSTER_FILE}: not a run or cluster directory")


def replay(chain_path: Path) -> LedgerState:
    """The state after every block of the chain at ``chain_path``."""
    state = LedgerState()
    try:
        with chain_snapshot(chain_path) as chain:
            for block in chain.iter_blocks():
                state = apply_block(state, block)
    except LedgerError as err:
        raise RecordsError(f"{chain_path}: the chain does not replay: {err}") from None
    return state


def edge_rows(state: LedgerState) -> list[dict[str, Any]]:
    """One row per enrolled edge, in genesis order."""
    economics = state.economics
    rows = []
    for index, edge in enumerate(state.edges):
        record = state.edge_records[edge]
        row: dict[str, Any] = {"edge": index, "address": edge, **record.to_dict()}
        if economics is not None:
            balance = state.balances[edge]
            row.update(balance.to_dict(), eligible=balance.balance >= economics.min_stake)
        rows.append(row)
    return rows


@click.command("records")
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="print the records as JSON")
def records_command(path: Path, as_json: bool) -> None:
    """Each edge's record (committed, accepted, dissent, withheld) and, with stake, its account."""
    states = [replay(p) for p in chain_paths(path)]
    state = max(states, key=lambda s: s.height)
    rows = edge_rows(state)
    economics = state.economics
    if as_json:
        body: dict[str, Any] = {"height": state.height, "economics": economics.spec() if economics else None,
                                "edges": rows}
        if state.payments:
            body["payments"] = bill(state)
        print(json.dumps(body, indent=2))
        return
    columns = ["edge", "committed", "accepted", "dissent", "withheld"]
    if economics is not None:
        columns += ["stake", "earned", "slashed", "balance", "eligible"]
    table = Table(title=f"edge records at height {state.height}: {path}")
    for column in columns:
        table.add_column(column, justify="left" if column == "edge" else "right")
    for row in rows:
        table.add_row(str(row["edge"]), *(str(row[c]) for c in columns[1:]))
    console.print(table)
    console.print("edge addresses, in genesis order: " + ", ".join(f"{r['edge']} {r['address'][:12]}" for r in rows),
                  highlight=False, soft_wrap=True)
    if economics is not None:
        console.print(f"reward {economics.reward} per accepted answer, slash {economics.slash} per proven dissent "
                      f"(burned), minimum stake {economics.min_stake} to be assigned", highlight=False)
    if state.payments:
        console.print(payments_table(state, path))


def payments_table(state: LedgerState, path: Path) -> Table:
    """What each participant of a paid session deposited, paid and earned, in units (keys shortened)."""
    columns = ["account", "role", "deposited", "paid", "earned", "balance"]
    table = Table(title=f"payments at height {state.height}: {path}")
    for column in columns:
        table.add_column(column, justify="left" if column in ("account", "role") else "right")
    names = {**{address: f"edge-{index}" for index, address in enumerate(state.edges)},
             **{address: f"validator-{index}" for index, address in enumerate(state.validators)}}
    for row in bill(state):
        account = names.get(row["account"], row["account"])
        table.add_row(account, row["role"], *(str(row[c]) for c in columns[2:]))
    return table
