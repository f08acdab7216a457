"""The run directory: what a run keeps on disk, and the checks made before anything is written there.

Owns the names of the run's files, reading a run's ``config.json`` (one-line ``ConfigError`` for
anything but a JSON object of valid settings), the shape of the directory (each entry of the right
kind), the resume rule, and creating the directory so that a failure half-way removes only what this
invocation created.

Resume rule: the genesis records ``config_hash`` = ``RunConfig.hash()`` over every recorded setting
(all but ``EXECUTION_SETTINGS``). A run directory is reopened only with a config of that hash; the
directory's ``config.json`` serves to name which setting differs. A directory without a chain (the
traditional framework keeps none, or a run killed before its genesis) holds nothing to resume: it is
reused only with the same recorded settings, and then the run starts again from round 0.

Must not know: the ledger's replay (the caller passes the genesis's hash), the dataset.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from bmoe.credentials import without_credentials
from bmoe.fileio import read_regular_text
from bmoe.run.config import EXECUTION_SETTINGS, ConfigError, RunConfig, from_dict

CHAIN_FILE = "chain.sqlite"
STORE_DIR = "store"
CONFIG_FILE = "config.json"
HEAD_FILE = "head.json"  # the last sealed block, replaced after each (ledger/head_anchor): a killed run is anchored
# entry -> must it be a directory (else a file)
LAYOUT = {CHAIN_FILE: False, STORE_DIR: True, CONFIG_FILE: False, HEAD_FILE: False, "metrics.json": False,
          "metrics.csv": False}


class RunDirError(ConfigError):
    """A run directory cannot be used (a file in the way, unwritable, or another run's settings)."""


def read_config_text(path: Path) -> str:
    """A config file's text (JSON or TOML); ConfigError naming the file when it cannot be read as UTF-8."""
    try:
        return read_regular_text(path)  # a FIFO or a device is refused, never read
    except UnicodeDecodeError:
        raise ConfigError(f"config file {path}: not UTF-8 text") from None
    except OSError as err:
        raise ConfigError(f"cannot read config file {path}: {err.strerror or err}") from None


def read_config_file(path: Path) -> RunConfig:
    """The ``RunConfig`` in a JSON file; ConfigError naming the file for any unusable content."""
    text = read_config_text(path)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise ConfigError(f"config file {path}: not valid JSON ({err.msg} at line {err.lineno})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path}: expected a JSON object of settings, got {type(data).__name__}")
    try:
        return from_dict(data)
    except ConfigError as err:
        raise ConfigError(f"config file {path}: {err}") from None


def check_layout(run_dir: Path) -> None:
    """Refuse a run directory that is a file, lies under a file, or holds an entry of the wrong kind."""
    for parent in (run_dir, *run_dir.parents):
        if parent.exists():
            if not parent.is_dir():
                if parent == run_dir:
                    raise RunDirError(f"run directory {run_dir} is not a directory")
                raise RunDirError(f"run directory {run_dir}: {parent.name!r} above it is a file, not a directory")
            break
    for name, is_dir in LAYOUT.items():
        entry = run_dir / name
        if entry.exists() and entry.is_dir() != is_dir:
            raise RunDirError(f"{entry} must be a {'directory' if is_dir else 'file'}; move it away or use "
                              "a new --run-dir")


def differences(old: RunConfig, new: RunConfig) -> list[str]:
    """``"batch_size was 100, now 50"`` for each recorded setting that differs."""
    before, after = old.to_dict(), new.to_dict()
    return [f"{key} was {before[key]!r}, now {after[key]!r}" for key in sorted(before)
            if key not in EXECUTION_SETTINGS and before[key] != after[key]]


def check_recorded(run_dir: Path, config: RunConfig, genesis_hash: str | None) -> None:
    """Refuse to reopen ``run_dir`` with recorded settings other than its run's (execution settings may change).

    ``genesis_hash``: the ``config_hash`` the chain's genesis records, or None without a genesis.
    """
    path = run_dir / CONFIG_FILE
    stored: RunConfig | None = None
    problem = ""
    if path.exists():
        try:
            stored = read_config_file(path)
        except ConfigError as err:
            problem = str(err)
    if genesis_hash is not None:
        if genesis_hash == config.hash():
            return
        if stored is not None and stored.hash() == genesis_hash:
            changed = "; ".join(differences(stored, config))
            raise RunDirError(f"resume: the run was made with other settings: {changed}; use a new --run-dir")
        why = problem or (f"{path} is missing" if stored is None else f"{path} was edited after the run began")
        raise RunDirError(f"resume: the settings differ from those the chain's genesis records (config_hash "
                          f"{genesis_hash[:12]}...), and {why}, so the setting cannot be named; use a new --run-dir")
    if problem:
        raise RunDirError(f"{problem}; the run directory holds a run this config cannot be checked against: "
                          "use a new --run-dir")
    if stored is not None and stored.hash() != config.hash():
        raise RunDirError(f"{run_dir} holds a run with other settings: {'; '.join(differences(stored, config))}; "
                          "use a new --run-dir")


class Creation:
    """What this invocation creates in a run directory, so that a failure half-way removes exactly that.

    The directory (with any missing parents) if it did not exist; else each of its entries that did not
    exist. A directory or entry that existed before is never removed.
    """

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        missing = [p for p in (run_dir, *run_dir.parents) if not p.exists()]
        self.top = missing[-1] if missing else None
        self.existing = {name for name in LAYOUT if (run_dir / name).exists()}
        try:
            run_dir.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise RunDirError(f"cannot create run directory {run_dir}: {err.strerror or err}") from None

    def undo(self) -> None:
        if self.top is not None:
            shutil.rmtree(self.top, ignore_errors=True)
            return
        for name in set(LAYOUT) - self.existing:
            path = self.run_dir / name
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
        if CHAIN_FILE not in self.existing:
            for suffix in ("-wal", "-shm", "-journal"):
                (self.run_dir / f"{CHAIN_FILE}{suffix}").unlink(missing_ok=True)


def write_config(run_dir: Path, config: RunConfig) -> None:
    """Write ``config.json`` (only once the chain is known to match these settings); node URLs without their
    credentials (:mod:`bmoe.credentials`: the flag or the environment gives them each time)."""
    body = config.to_dict()
    for key in ("rpc_url", "ipfs_api"):
        if body.get(key):
            body[key] = without_credentials(body[key])
    try:
        (run_dir / CONFIG_FILE).write_text(json.dumps(body, indent=2, sort_keys=True) + "\n")
    except OSError as err:
        raise RunDirError(f"cannot write {run_dir / CONFIG_FILE}: {err.strerror or err}") from None


def recorded_settings(run_dir: Path) -> RunConfig | None:
    """The settings ``run_dir`` recorded, or None (an unreadable config.json is named by the resume check)."""
    if not (run_dir / CONFIG_FILE).is_file():
        return None
    try:
        return read_config_file(run_dir / CONFIG_FILE)
    except ConfigError:
        return None
