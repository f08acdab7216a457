"""``bmoe store``: run one storage node (``python -m bmoe.net.store ...`` until it is wired into ``bmoe``).

Owns the command line of a storage node: reading the key and enrolment files, checking the flags,
binding the socket, printing where the node listens, serving. Bad flags or files print one line on
stderr and exit with status 2, before anything is bound or written.

    python -m bmoe.net.store --host 127.0.0.1 --port 8101 --data-dir D --key node.key \\
        --enrolled enrolled.json --peers http://127.0.0.1:8102,http://127.0.0.1:8103 --replication 2
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from bmoe.ledger.errors import LedgerError
from bmoe.ledger.keys import load_identity
from bmoe.net.enrolment import load_enrolment
from bmoe.net.errors import EnrolmentError
from bmoe.net.http.auth import DEFAULT_MAX_BODY, DEFAULT_WINDOW_S
from bmoe.net.http.serve import bind, serve, url_of
from bmoe.net.store.service import NodeConfig, StoreNode

EXIT_USAGE = 2


def _peer_list(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


@click.command("store", help="Run a storage node: a signed HTTP blob store that replicates to its peers.")
@click.option("--host", default="127.0.0.1", show_default=True, help="address to listen on")
@click.option("--port", type=click.IntRange(0, 65535), default=0, show_default=True, help="0 picks a free port")
@click.option("--data-dir", type=click.Path(path_type=Path), required=True, help="where the objects are kept")
@click.option("--key", "key_file", type=click.Path(path_type=Path), required=True,
              help="this node's identity file (bmoe.ledger.keys.save_identity)")
@click.option("--enrolled", type=click.Path(path_type=Path), required=True,
              help='JSON {"name": address} of every participant this node accepts requests from')
@click.option("--peers", default="", help="comma-separated URLs of the other storage nodes")
@click.option("--replication", type=click.IntRange(min=1), default=2, show_default=True,
              help="copies of each blob, this node's included")
@click.option("--url", "advertised", default=None,
              help="this node's URL as peers and clients list it [default: http://HOST:PORT]")
@click.option("--max-body", type=click.IntRange(min=1), default=DEFAULT_MAX_BODY, show_default=True,
              help="largest request body in bytes")
@click.option("--window", type=click.FloatRange(min=1.0), default=DEFAULT_WINDOW_S, show_default=True,
              help="seconds of clock skew accepted; nonces are remembered this long")
@click.option("--allow-delete", is_flag=True, help="let enrolled clients delete objects (off: objects are evidence)")
def store_command(host: str, port: int, data_dir: Path, key_file: Path, enrolled: Path, peers: str,
                  replication: int, advertised: str | None, max_body: int, window: float, allow_delete: bool) -> None:
    try:
        identity = load_identity(key_file)
        members = load_enrolment(enrolled)
    except (LedgerError, EnrolmentError) as exc:
        raise click.UsageError(str(exc)) from None
    peer_urls = _peer_list(peers)
    if peer_urls and identity.address not in members.values():
        raise click.UsageError(f"this node's key {identity.address} is not in {enrolled}; its peers would refuse it")
    if data_dir.exists() and not data_dir.is_dir():
        raise click.UsageError(f"--data-dir {data_dir} exists and is not a directory")
    try:
        sock = bind(host, port)
    except OSError as exc:
        raise click.UsageError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    try:
        config = NodeConfig(data_dir=data_dir, identity=identity, enrolled=members, url=advertised or url_of(sock),
                            peers=peer_urls, replication=replication, max_body=max_body, window=window,
                            allow_delete=allow_delete)
        node = StoreNode(config)
    except (ValueError, OSError) as exc:
        sock.close()
        raise click.UsageError(str(exc)) from None

    def announce() -> None:
        known_as = "" if node.config.url == url_of(sock) else f" (known as {node.config.url})"
        click.echo(f"bmoe store: listening on {url_of(sock)}{known_as}, key {identity.address}, "
                   f"data {data_dir}, replication {replication}, {len(config.peers)} peer(s)")
        sys.stdout.flush()

    serve(node.app(), sock, on_listening=announce)


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the command, turning flag and file errors into one line and exit status 2."""
    try:
        store_command.main(args=argv, prog_name="bmoe store", standalone_mode=False)
    except click.ClickException as exc:
        click.echo(f"error: {exc.format_message()}", err=True)
        sys.exit(EXIT_USAGE)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)

