"""What every command that runs a model checks and says before it starts: the config as a whole, in-process
fleet profiles, a free run directory, the cost of mining; and the summary table's columns.
"""

from __future__ import annotations

from pathlib import Path

from bmoe.cli.errors import fail
from bmoe.console import console, err_console
from bmoe.run.config import RunConfig, from_dict
from bmoe.verify.framework import framework_of


def checked_config(**settings: object) -> RunConfig:
    """A config validated as a whole: every setting, how they combine, the attack's parameters."""
    return from_dict(settings)


def show_mining_cost(config: RunConfig) -> None:
    """Say what a block costs before mining at a costly difficulty (ledger/pow_rate), so no run is silently long."""
    if not framework_of(config.framework).keeps_ledger or config.consensus != "pow":
        return
    from bmoe.ledger.pow_rate import hash_rate, mining_estimate

    line = mining_estimate(config.difficulty, hash_rate()) if config.difficulty >= 16 else None
    if line is not None:
        err_console.print(line, highlight=False, markup=False, soft_wrap=True)


def print_bound_in_force(config: RunConfig) -> None:
    """The bounds in force and their origin, as the genesis will record them (tolerance only)."""
    described = config.bound_in_force()
    if described is not None:
        console.print(f"bound in force: {described}", highlight=False, soft_wrap=True)


def check_in_process(config: RunConfig) -> None:
    """Refuse a fleet profile that only an edge process can honour (it sets environment variables)."""
    from bmoe.run.setup import in_process_profiles

    in_process_profiles(config)


def check_run_dir_free(run_dir: Path) -> None:
    """Refuse a run directory that is (or lies under) a file, or holds an entry of the wrong kind."""
    from bmoe.run.run_dir import check_layout

    check_layout(run_dir)


SUMMARY_COLUMNS = [("framework", "framework"), ("malicious_ratio", "malicious"), ("attack", "attack"),
                   ("rounds", "rounds"), ("test_accuracy", "test acc"), ("rejected_results", "rejected"),
                   ("misbehaviour_records", "misbehaviour"), ("head_hash", "head hash")]


def load_run_dir_config(run_dir: Path) -> RunConfig:
    from bmoe.run.run_dir import CONFIG_FILE, read_config_file

    if not run_dir.is_dir():
        fail(f"run directory {run_dir} does not exist or is not a directory")
    return read_config_file(run_dir / CONFIG_FILE)
