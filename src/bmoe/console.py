"""Terminal output: progress bars for rounds and results tables (Rich)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

if TYPE_CHECKING:
    from bmoe.protocol.round import RoundOutcome

console = Console()
err_console = Console(stderr=True)


@contextmanager
def round_progress() -> Iterator[Callable[[str, int], Callable[[RoundOutcome], None]]]:
    """Yields ``track(name, total) -> on_round`` that advances a bar per sealed round."""
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("loss {task.fields[loss]}"), TimeElapsedColumn(), TimeRemainingColumn(),
                  console=err_console, transient=False) as progress:
        def track(name: str, total: int) -> Callable[[RoundOutcome], None]:
            task = progress.add_task(name, total=total, loss="-")

            def on_round(outcome: RoundOutcome) -> None:
                loss = "-" if outcome.loss is None else f"{outcome.loss:.3f}"
                progress.update(task, completed=outcome.round + 1, loss=loss)
            return on_round
        yield track


def results_table(title: str, rows: Sequence[dict[str, Any]], columns: Sequence[tuple[str, str]]) -> Table:
    table = Table(title=title)
    for _, header in columns:
        table.add_column(header, justify="right")
    for row in rows:
        table.add_row(*[_cell(row.get(key)) for key, _ in columns])
    return table


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4f}"
    if isinstance(value, str) and len(value) == 64:
        return value[:16] + "…"
    return str(value)
