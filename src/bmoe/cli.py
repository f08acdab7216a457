"""The ``bmoe`` command: demo, train, infer, audit, cid.

User errors (bad flags, missing data, unreadable run directories, tampered chains) print one line
on stderr and exit with status 2; nothing is written before the inputs are validated.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from bmoe.console import console, err_console, results_table, round_progress
from bmoe.data import DataError
from bmoe.ledger.errors import LedgerError
from bmoe.protocol.config import ConfigError, RunConfig, from_dict
from bmoe.storage import StorageError
from bmoe.verify.comparison import HonestDisagreement

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="B-MoE: Mixture-of-Experts on untrusted edges, verified on a ledger.")

EXIT_USAGE = 2


class UserError(Exception):
    """An error caused by the user's input; reported in one line, exit status 2."""


def _fail(message: str) -> None:
    raise UserError(message)


def _parse_params(pairs: list[str]) -> dict[str, float]:
    params: dict[str, float] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            _fail(f"--attack-param must look like NAME=NUMBER, got {pair!r}")
        try:
            params[key] = float(value)
        except ValueError:
            _fail(f"--attack-param {key}: {value!r} is not a number")
    return params


def _config(**settings: object) -> RunConfig:
    config = from_dict(settings)
    from bmoe.edge.behaviour import make_behaviour

    try:
        make_behaviour(config.attack, **config.attack_params)
    except ValueError as err:
        raise ConfigError(str(err)) from None
    return config


def _check_run_dir_free(run_dir: Path) -> None:
    if run_dir.exists() and not run_dir.is_dir():
        _fail(f"run directory {run_dir} exists and is not a directory")


SUMMARY_COLUMNS = [("framework", "framework"), ("malicious_ratio", "malicious"), ("attack", "attack"),
                   ("rounds", "rounds"), ("test_accuracy", "test acc"), ("rejected_results", "rejected"),
                   ("misbehaviour_records", "misbehaviour"), ("head_hash", "head hash")]


@app.command()
def demo(
    rounds: Annotated[int, typer.Option(help="training rounds per run")] = 150,
    malicious_ratio: Annotated[float, typer.Option(help="share of malicious edges under attack")] = 0.3,
    out: Annotated[Path, typer.Option(help="where the four run directories go")] = Path("runs/demo"),
    seed: Annotated[int, typer.Option()] = 0,
) -> None:
    """B-MoE vs the traditional framework, without and with colluding Gaussian attackers (digits data)."""
    from bmoe.experiments.demo import DEMO_DEFAULTS, run_demo

    base = DEMO_DEFAULTS.replace(rounds=rounds, seed=seed)
    if not 0 < malicious_ratio < 1:
        _fail(f"--malicious-ratio must be in (0, 1) for the demo, got {malicious_ratio}")
    _check_run_dir_free(out)
    if out.exists():
        _fail(f"{out} already exists; remove it or pass --out to a new directory")
    with round_progress() as track:
        rows = run_demo(base, malicious_ratio, out, track)
    columns = [("framework", "framework"), ("malicious_ratio", "trained among"), ("test_accuracy", "test acc"),
               ("served_among_attackers", "served (p=0.2)"), ("served_among_always_on_attackers", "served (p=1)"),
               ("misbehaviour_records", "misbehaviour"), ("head_hash", "head hash")]
    console.print(results_table("B-MoE vs traditional distributed MoE (digits, N=10, K=3, M=10)", rows, columns))
    by_name = {row["name"]: row for row in rows}
    attacked = f"r{malicious_ratio:.1f}"
    b_clean, b_att = by_name["bmoe-r0.0"], by_name[f"bmoe-{attacked}"]
    t_clean, t_att = by_name["traditional-r0.0"], by_name[f"traditional-{attacked}"]
    console.print(
        f"Trained among {malicious_ratio:.0%} colluding attackers, B-MoE reaches {b_att['test_accuracy']:.4f} "
        f"({b_att['test_accuracy'] - b_clean['test_accuracy']:+.4f} vs no attack), traditional "
        f"{t_att['test_accuracy']:.4f} ({t_att['test_accuracy'] - t_clean['test_accuracy']:+.4f}).\n"
        f"Models trained without attack, then served among {malicious_ratio:.0%} attackers striking with "
        f"probability 0.2 / 1.0 per round: B-MoE {b_clean['served_among_attackers']:.4f} / "
        f"{b_clean['served_among_always_on_attackers']:.4f}, traditional {t_clean['served_among_attackers']:.4f} / "
        f"{t_clean['served_among_always_on_attackers']:.4f}.")
    (out / "demo.json").write_text(json.dumps(rows, indent=2) + "\n")
    console.print(f"run directories and demo.json in {out}; check a chain with: bmoe audit {out}/bmoe-{attacked}")


@app.command()
def train(
    run_dir: Annotated[Path, typer.Option(help="run directory (chain, store, config, metrics)")],
    framework: Annotated[str, typer.Option(help="bmoe | traditional")] = "bmoe",
    dataset: Annotated[str, typer.Option(help="digits | fashion-mnist | cifar10 | synthetic")] = "digits",
    data_dir: Annotated[Path | None, typer.Option(help="directory holding the dataset files")] = None,
    rounds: Annotated[int, typer.Option(help="training rounds T")] = 100,
    batch_size: Annotated[int, typer.Option(help="samples per task")] = 100,
    experts: Annotated[int, typer.Option("--experts", "-n", help="number of experts N")] = 10,
    top_k: Annotated[int, typer.Option("--top-k", "-k", help="experts per sample K")] = 3,
    edges: Annotated[int, typer.Option("--edges", "-m", help="number of edges M")] = 10,
    expert: Annotated[str, typer.Option(help="mlp | cnn")] = "mlp",
    lr: Annotated[float, typer.Option(help="SGD learning rate")] = 0.1,
    balance: Annotated[float, typer.Option(help="load-balancing loss weight at the gate")] = 0.01,
    malicious_ratio: Annotated[float, typer.Option(help="share of malicious edges, in [0, 1)")] = 0.0,
    attack: Annotated[str, typer.Option(help="gaussian | sign_flip | scale | random | replay | withhold | "
                                             "sleeper")] = "gaussian",
    attack_param: Annotated[list[str] | None, typer.Option(help="NAME=NUMBER, e.g. probability=0.2")] = None,
    collude: Annotated[bool, typer.Option(help="malicious edges share their random choices")] = True,
    rule: Annotated[str, typer.Option(help="majority | fraction | plurality")] = "majority",
    rule_fraction: Annotated[float, typer.Option(help="quorum for --rule fraction")] = 2 / 3,
    difficulty: Annotated[int, typer.Option(help="PoW difficulty in leading zero bits")] = 8,
    share_compute: Annotated[bool, typer.Option(help="compute identical honest replicas once")] = True,
    eval_every: Annotated[int, typer.Option(help="rounds between test evaluations")] = 10,
    limit_train: Annotated[int | None, typer.Option(help="use only this many training samples")] = None,
    limit_test: Annotated[int | None, typer.Option(help="use only this many test samples")] = None,
    seed: Annotated[int, typer.Option()] = 0,
    threads: Annotated[int, typer.Option(help="torch threads (bit-exact agreement needs equal counts)")] = 1,
) -> None:
    """Train a B-MoE (or traditional) model; resumes a killed B-MoE run in the same --run-dir."""
    from bmoe.experiments.runs import train_run

    config = _config(framework=framework, dataset=dataset, data_dir=None if data_dir is None else str(data_dir),
                     rounds=rounds, batch_size=batch_size, num_experts=experts, top_k=top_k, num_edges=edges,
                     expert=expert, lr=lr, balance=balance, malicious_ratio=malicious_ratio, attack=attack,
                     attack_params=_parse_params(attack_param or []), collude=collude, rule=rule,
                     rule_fraction=rule_fraction, difficulty=difficulty, share_compute=share_compute,
                     eval_every=eval_every, limit_train=limit_train, limit_test=limit_test, seed=seed,
                     threads=threads)
    _check_run_dir_free(run_dir)
    from bmoe.data import load_dataset

    load_dataset(config.dataset, data_dir, config.seed, config.limit_train, config.limit_test)  # fail early
    with round_progress() as track:
        summary = train_run(config, run_dir, track(f"{framework} training", rounds))
    console.print(results_table(f"training: {run_dir}", [summary], SUMMARY_COLUMNS))


def _load_run_config(run_dir: Path) -> RunConfig:
    path = run_dir / "config.json"
    if not run_dir.is_dir():
        _fail(f"run directory {run_dir} does not exist or is not a directory")
    try:
        return from_dict(json.loads(path.read_text()))
    except OSError as err:
        _fail(f"{path}: cannot read the run's config ({err.strerror or err})")
    except json.JSONDecodeError as err:
        _fail(f"{path}: not valid JSON ({err.msg} at line {err.lineno})")
    raise AssertionError("unreachable")


@app.command()
def infer(
    run_dir: Annotated[Path, typer.Argument(help="a trained B-MoE run directory")],
    malicious_ratio: Annotated[float | None, typer.Option(help="deploy among this share of attackers")] = None,
    attack: Annotated[str | None, typer.Option(help="the attackers' behaviour")] = None,
    limit: Annotated[int | None, typer.Option(help="serve only the first N test samples")] = None,
) -> None:
    """Serve the test set through the framework (steps 1-3 and 6), sealing inference blocks."""
    from bmoe.protocol.session import Session

    config = _load_run_config(run_dir)
    if config.framework != "bmoe":
        _fail("only B-MoE run directories keep a ledger to serve from")
    if not (run_dir / "chain.sqlite").exists():
        _fail(f"{run_dir} has no chain.sqlite: not a B-MoE run directory")
    deployed = config.replace(**{k: v for k, v in {"malicious_ratio": malicious_ratio,
                                                    "attack": attack}.items() if v is not None})
    _config(**deployed.to_dict())
    if limit is not None and limit < 1:
        _fail(f"--limit must be >= 1, got {limit}")
    with Session(config.replace(limit_test=limit) if limit else config, run_dir=run_dir) as session:
        session.set_edge_behaviours(deployed)
        accuracy = session.infer_test_set()
        row = {"framework": config.framework, "malicious_ratio": deployed.malicious_ratio,
               "attack": deployed.attack if deployed.malicious_edges else "none",
               "test_accuracy": accuracy, "head_hash": session.head_hash}
    console.print(results_table(f"inference: {run_dir}", [row], [SUMMARY_COLUMNS[i] for i in (0, 1, 2, 4, 7)]))


@app.command()
def audit(run_dir: Annotated[Path, typer.Argument(help="a B-MoE run directory")]) -> None:
    """Replay the chain and check every hash, signature, Merkle root, PoW, state root and stored object."""
    from bmoe.ledger.audit import audit as run_audit
    from bmoe.ledger.chainstore import ChainStore
    from bmoe.protocol.session import CHAIN_FILE, STORE_DIR
    from bmoe.storage import DirectoryStore

    if not run_dir.is_dir():
        _fail(f"run directory {run_dir} does not exist or is not a directory")
    chain_path = run_dir / CHAIN_FILE
    if not chain_path.is_file():
        _fail(f"{run_dir} has no {CHAIN_FILE}: not a B-MoE run directory")
    min_difficulty = None
    if (run_dir / "config.json").exists():
        min_difficulty = _load_run_config(run_dir).difficulty
    with ChainStore(chain_path) as chain:
        report = run_audit(chain, DirectoryStore(run_dir / STORE_DIR), min_difficulty)
    console.print(f"OK: {report.blocks} blocks (height {report.height}), head {report.head_hash}")
    console.print(f"checked {report.transactions} transactions, {report.signatures} signatures, Merkle roots, "
                  f"proof of work (>= {min_difficulty or 0} bits), state roots by replay, "
                  f"{report.objects_checked} required objects, {report.evidence_checked} evidence objects "
                  f"({report.evidence_missing} evidence objects absent)")


@app.command()
def cid(file: Annotated[Path, typer.Argument(help="any file")]) -> None:
    """Print the CID that `ipfs add --cid-version 1 --only-hash FILE` prints."""
    from bmoe.storage import cid_of

    try:
        data = file.read_bytes()
    except OSError as err:
        _fail(f"{file}: {err.strerror or err}")
    console.print(cid_of(data), highlight=False)


def main() -> None:
    """Entry point: run the app, turning user errors into one line and exit status 2."""
    try:
        app(standalone_mode=False)
    except (UserError, ConfigError, DataError, LedgerError, StorageError, HonestDisagreement) as err:
        err_console.print(f"error: {err}", highlight=False, markup=False)
        sys.exit(EXIT_USAGE if not isinstance(err, HonestDisagreement) else 3)
    except typer.Exit as exit_:
        sys.exit(exit_.exit_code)
    except typer.Abort:
        err_console.print("aborted")
        sys.exit(130)
    except Exception as err:  # click usage errors
        import click

        if isinstance(err, click.ClickException):
            err_console.print(f"error: {err.format_message()}", highlight=False, markup=False)
            sys.exit(EXIT_USAGE)
        raise
