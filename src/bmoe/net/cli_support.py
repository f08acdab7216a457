"""Running a deployment command on its own (``python -m bmoe.net.<role>``): user errors in one line, exit 2.

Owns the entry-point wrapper shared by the validator, edge, publisher and cluster commands, and the
errors it reports without a traceback. Wired into ``bmoe`` (``app.add_command``), the same errors
reach ``bmoe.cli.main``, which already reports them the same way (:class:`SetupError` is a
``NetError``).
"""

from __future__ import annotations

import sys

import click

from bmoe.data import DataError
from bmoe.ethereum.errors import EthereumError
from bmoe.ledger.errors import LedgerError
from bmoe.moe.payloads import PayloadError
from bmoe.net.errors import NetError
from bmoe.protocol.quorum_watch import QuorumStalled
from bmoe.run.config import ConfigError
from bmoe.storage import StorageError

EXIT_USAGE = 2
EXIT_STALLED = 3  # the deployment cannot make progress: results keep failing to reach quorum (as ``bmoe train``)
USER_ERRORS = (NetError, ConfigError, DataError, LedgerError, StorageError, PayloadError,  # PayloadError: NaN data
               EthereumError)  # a validator sealing on Ethereum: the node unreachable, the account unfunded


def run_command(command: click.Command, argv: list[str] | None, prog: str) -> None:
    """Run ``command``; a user error prints ``error: ...`` on stderr and exits 2."""
    try:
        code = command.main(args=argv, prog_name=prog, standalone_mode=False)
    except click.ClickException as exc:
        click.echo(f"error: {exc.format_message()}", err=True)
        sys.exit(EXIT_USAGE)
    except USER_ERRORS as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_USAGE)
    except QuorumStalled as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_STALLED)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except KeyboardInterrupt:
        sys.exit(130)
    if isinstance(code, int) and code:
        sys.exit(code)
