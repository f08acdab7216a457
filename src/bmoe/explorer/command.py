"""``bmoe explorer RUN_DIR`` and ``bmoe explorer --cluster DIR``: serve the explorer until Ctrl-C.

Owns the command line: which source, where to listen. Bad input (not a run directory, no cluster
there, a port another process holds) is one line and exit 2 (``bmoe.cli.main``), before anything is
served. The chain is audited and indexed before the first line is printed, so the terminal says
whether the audit passed; a chain that fails is still served, as its finding.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from bmoe.explorer.app import make_app
from bmoe.explorer.lm_source import cluster_source, run_source
from bmoe.explorer.snapshot import Explorer
from bmoe.explorer.source import ExplorerError, Source
from bmoe.net.http.serve import bind, serve, url_of

DEFAULT_PORT = 8765


@click.command("explorer")
@click.argument("run_dir", type=click.Path(path_type=Path), required=False)
@click.option("--cluster", type=click.Path(path_type=Path), default=None,
              help="explore the local cluster in this directory (bmoe cluster up) instead of a run directory")
@click.option("--host", default="127.0.0.1", show_default=True, help="the address to listen on")
@click.option("--port", type=click.IntRange(0, 65535), default=DEFAULT_PORT, show_default=True,
              help="the port to listen on (0: any free port, printed)")
def explorer_command(run_dir: Path | None, cluster: Path | None, host: str, port: int) -> None:
    """A read-only web explorer of a run's ledger (blocks, tasks, edges, experts, curves, audit), or of a
    live local cluster."""
    if (run_dir is None) == (cluster is None):
        raise ExplorerError("give a RUN_DIR or --cluster DIR (one of them)")
    source: Source = run_source(run_dir) if run_dir is not None else cluster_source(cluster)  # type: ignore[arg-type]
    try:
        sock = bind(host, port)
    except OSError as err:
        raise ExplorerError(f"cannot listen on {host}:{port}: {err.strerror or err} (choose another --port, "
                            "or --port 0 for any free one)") from None
    explorer = Explorer(source)
    served = explorer.current()
    audit = "audit OK" if served.index is not None else f"audit FAILED, the pages show why: {served.finding}"
    click.echo(f"bmoe explorer: {source.label} at {url_of(sock)}/ ({audit}); stop with Ctrl-C")
    sys.stdout.flush()
    serve(make_app(explorer, cluster is not None), sock)
