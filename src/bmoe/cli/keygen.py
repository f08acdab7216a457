"""``bmoe keygen``: a fresh Ed25519 key for a participant, and the line an operator hands in to be enrolled.
"""

from __future__ import annotations

from pathlib import Path

import click

from bmoe.cli.errors import fail
from bmoe.console import console


@click.command()
@click.argument("name", required=False)
@click.option("--out", type=click.Path(path_type=Path), required=True,
              help="the key file to write (mode 0600; an existing file is never overwritten)")
@click.option("--enrolment", type=click.Path(path_type=Path), default=None,
              help="also add NAME's address to this enrolment file (created if missing)")
def keygen(name: str | None, out: Path, enrolment: Path | None) -> None:
    """Make a fresh Ed25519 key that nobody else knows, for a participant (NAME, default: the file's stem)
    and print its public key (address), the line an operator hands in to be enrolled."""
    from bmoe.ledger.errors import LedgerError
    from bmoe.ledger.keys import create_identity, generate_identity
    from bmoe.net.enrolment import load_enrolment, save_enrolment

    name = name if name is not None else out.stem
    if out.exists() or out.is_symlink():
        fail(f"{out} already exists; keys are never overwritten")
    entries = load_enrolment(enrolment) if enrolment is not None and enrolment.exists() else {}
    if name in entries:
        fail(f"{name!r} is already enrolled in {enrolment}")
    identity = generate_identity(name)
    try:
        create_identity(out, identity)
    except LedgerError as exc:
        fail(str(exc))
    if enrolment is not None:
        save_enrolment(enrolment, {**entries, name: identity.address})
    console.print(f"{name} {identity.address}", highlight=False)
