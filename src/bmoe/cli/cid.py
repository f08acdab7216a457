"""``bmoe cid``: the CID ``ipfs add --cid-version 1 --only-hash`` prints for a file.
"""

from __future__ import annotations

from pathlib import Path

import click

from bmoe.cli.errors import fail
from bmoe.console import console


@click.command()
@click.argument("file", type=click.Path(path_type=Path))
def cid(file: Path) -> None:
    """Print the CID that `ipfs add --cid-version 1 --only-hash FILE` prints (FILE: a regular file)."""
    from bmoe.fileio import open_regular_file
    from bmoe.storage import cid_of_stream

    try:
        with open_regular_file(file) as handle:  # a FIFO or a device is refused before it is opened
            text = cid_of_stream(handle)  # read 256 KiB at a time: memory stays bounded
    except OSError as err:
        fail(f"{file}: {err.strerror or err}")
    console.print(text, highlight=False)
