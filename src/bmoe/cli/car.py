"""``bmoe export-car RUN_DIR`` and ``bmoe import-car CAR``: a run's objects as one CAR v1 file, and back.

Owns the commands around :mod:`bmoe.storage.car`: which objects a run directory holds (every object of
its ``store/``), where the CAR goes, and where imported objects land (a run directory's ``store/`` or a
store directory). An IPFS node imports the file with ``ipfs dag import`` and then holds every object
under the CID the run's chain names. Importing checks the whole CAR before the first object is
written; a bad CAR, path or run directory is one line and exit status 2.
"""

from __future__ import annotations

from pathlib import Path

import click

from bmoe.console import console
from bmoe.fileio import open_regular_file
from bmoe.run.run_dir import CONFIG_FILE, STORE_DIR, check_layout, read_config_file
from bmoe.storage import CorruptObject, DirectoryStore
from bmoe.storage.car import check_car, export_objects, import_objects
from bmoe.storage.errors import InvalidCar


class CarCommandError(click.ClickException):
    """A path the CAR commands cannot use (one line, exit 2)."""


def _run_objects(run_dir: Path) -> DirectoryStore:
    """The run directory's own store; refused where the run keeps its objects elsewhere (an IPFS node)."""
    if not run_dir.is_dir():
        raise CarCommandError(f"run directory {run_dir} does not exist or is not a directory")
    root = run_dir / STORE_DIR
    if not root.is_dir():
        config = read_config_file(run_dir / CONFIG_FILE) if (run_dir / CONFIG_FILE).is_file() else None
        if config is not None and config.store == "ipfs":
            raise CarCommandError(f"{run_dir} keeps its objects on the IPFS node {config.ipfs_api}: export them "
                                  "there (ipfs dag export CID)")
        raise CarCommandError(f"{run_dir} has no {STORE_DIR}/ directory: not a run directory with objects")
    return DirectoryStore(root, create=False)


@click.command("export-car")
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="the CAR file to write [RUN_DIR.car, beside the run directory]")
def export_car_command(run_dir: Path, out: Path | None) -> None:
    """Write every object of RUN_DIR's store as one CAR v1 file (roots: the objects) for `ipfs dag import`."""
    store = _run_objects(run_dir)
    target = out if out is not None else run_dir.parent / f"{run_dir.resolve().name}.car"
    if target.is_dir() or not target.parent.is_dir():
        raise CarCommandError(f"--out {target}: {'is a directory' if target.is_dir() else 'its directory is missing'}")
    cids = list(store.cids())
    try:
        blocks = export_objects(store, cids, target)
    except OSError as err:
        raise CarCommandError(f"cannot write {target}: {err.strerror or err}") from None
    console.print(f"wrote {target}: {len(cids)} objects, {blocks} blocks, {target.stat().st_size} bytes",
                  highlight=False, soft_wrap=True)


@click.command("import-car")
@click.argument("car", type=click.Path(path_type=Path))
@click.option("--run-dir", type=click.Path(path_type=Path), default=None,
              help="put the objects in this run directory's store/")
@click.option("--store-dir", type=click.Path(path_type=Path), default=None,
              help="put the objects in this store directory")
def import_car_command(car: Path, run_dir: Path | None, store_dir: Path | None) -> None:
    """Read a CAR v1 file, check every block and every root object, then store the root objects."""
    if (run_dir is None) == (store_dir is None):
        raise CarCommandError("give --run-dir DIR or --store-dir DIR (one of them)")
    try:
        open_regular_file(car).close()  # a FIFO, a device or a directory is refused before it is read
    except OSError as err:
        raise CarCommandError(f"{car}: {err.strerror or err}") from None
    if run_dir is not None:
        check_layout(run_dir)
        root = run_dir / STORE_DIR
    else:
        assert store_dir is not None
        root = store_dir
    if root.exists() and not root.is_dir():
        raise CarCommandError(f"{root} is not a directory")
    try:
        index = check_car(car)
    except (InvalidCar, CorruptObject) as err:
        raise InvalidCar(f"{car}: refused: {err}") from None
    try:
        roots = import_objects(index, DirectoryStore(root))
    except OSError as err:
        raise CarCommandError(f"cannot write {root}: {err.strerror or err}") from None
    console.print(f"imported {len(roots)} objects from {car} into {root}", highlight=False, soft_wrap=True)
