"""The ``bmoe`` command: demo, train, infer, audit, cid.

User errors (bad flags, missing data, unreadable run directories, tampered chains) print one line
on stderr and exit with status 2; nothing is written before the inputs are validated.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path

import click

from bmoe.console import console, err_console, results_table, round_progress
from bmoe.lazy_group import LazyCommand, LazyGroup
from bmoe.ledger_options import ledger_options, ledger_settings
from bmoe.protocol.config import RunConfig, from_dict
from bmoe.protocol.quorum_watch import DEFAULT_STALL_AFTER
from bmoe.store_options import store_options, store_settings
from bmoe.verify.framework import framework_of

# The commands defined in other modules, imported only when run (lazy_group): where each lives, and the first
# sentence of its help as `bmoe --help` lists it (tests/test_imports.py checks it against the command's own help).
SERVICE_COMMANDS = {
    "audit": LazyCommand("bmoe.audit_command:audit_command", "Replay the chain from its genesis and check every "
                         "hash, signature, seal, state root and object."),
    "store": LazyCommand("bmoe.net.store_main:store_command", "Run a storage node: a signed HTTP blob store that "
                         "replicates to its peers."),
    "validator": LazyCommand("bmoe.net.validator_main:validator_command", "Run the validator: the round's ledger "
                             "side, edges and publisher over HTTP."),
    "edge": LazyCommand("bmoe.net.edge_main:edge_command", "Run one edge: poll the validator for work, compute "
                        "experts, post signed commitments."),
    "publish": LazyCommand("bmoe.net.publisher:publish_command", "Publish training rounds (or serve the test set) "
                           "to a deployed validator."),
    "cluster": LazyCommand("bmoe.net.cluster:cluster_group", "A local deployment: storage nodes, one validator and "
                           "M edges as processes."),
    "calibrate": LazyCommand("bmoe.experiments.calibration.command:calibrate_command", "Measure honest divergence "
                             "across the fleet's numeric profiles and recommend a tolerance bound."),
    "bound": LazyCommand("bmoe.bound_command:bound_command", "The replicas r that sampled replication needs, and "
                         "the escape probability per r."),
    "records": LazyCommand("bmoe.records_command:records_command", "Each edge's record (committed, accepted, "
                           "dissent, withheld) and, with stake, its account."),
    "sweep-sampling": LazyCommand("bmoe.experiments.sampling_sweep.command:sweep_sampling_command", "Accuracy "
                                  "under a colluding attack with r sampled replicas against `all`, and manipulated "
                                  "results accepted against the bound C(c, r)/C(M, r)."),
    "export-car": LazyCommand("bmoe.car_command:export_car_command", "Write every object of RUN_DIR's store as one "
                              "CAR v1 file (roots: the objects) for `ipfs dag import`."),
    "import-car": LazyCommand("bmoe.car_command:import_car_command", "Read a CAR v1 file, check every block and "
                              "every root object, then store the root objects."),
    "explorer": LazyCommand("bmoe.explorer.command:explorer_command", "A read-only web explorer of a run's ledger "
                            "(blocks, tasks, edges, experts, curves, audit), or of a live local cluster."),
}


@click.group(cls=LazyGroup, lazy_commands=SERVICE_COMMANDS,
             help="B-MoE: Mixture-of-Experts on untrusted edges, verified on a ledger.")
@click.version_option(package_name="bmoe")
def app() -> None:
    pass


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
    """A config validated as a whole: every setting, how they combine, the attack's parameters."""
    return from_dict(settings)


def comparison_options(command: Callable[..., None]) -> Callable[..., None]:
    """``--comparison``, ``--bound``, ``--update-bound``, ``--bound-from`` and ``--force-bound``, shared by train,
    demo and cluster up."""
    options = [
        click.option("--comparison", default=None, help="exact | tolerance | integer: how edges' answers are "
                     "judged the same (default exact; the demo: tolerance)"),
        click.option("--bound", type=float, default=None, help="tolerance: per-sample ‖Δ‖/max(‖y‖, 0.1) of results"),
        click.option("--update-bound", type=float, default=None, help="tolerance: element-wise |Δ| of updated weights"),
        click.option("--bound-from", type=click.Path(path_type=Path), default=None,
                     help="tolerance: a calibration.json written by bmoe calibrate: its bounds (unless --bound or "
                     "--update-bound), checked against its honest maxima; the genesis records its CID"),
        click.option("--force-bound", is_flag=True, default=False,
                     help="run with bounds outside the calibration's window (below its honest maximum, or more "
                     "than 1000x it); the genesis records that"),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def comparison_settings(comparison: str | None, bound: float | None, update_bound: float | None,
                        bound_from: Path | None, force_bound: bool = False,
                        default: str = "exact") -> dict[str, object]:
    """The config settings the comparison flags give; bounds without a tolerance comparison are refused.
    Whether the bounds sit in a calibration's window is checked with the whole config (config_checks)."""
    from bmoe.experiments.calibration.reading import BoundFileError, read_calibration

    chosen = comparison if comparison is not None else default
    given = [flag for flag, value in (("--bound", bound), ("--update-bound", update_bound),
                                      ("--bound-from", bound_from), ("--force-bound", True if force_bound else None))
             if value is not None]
    if given and chosen != "tolerance":
        _fail(f"{', '.join(given)} need --comparison tolerance (the comparison in force is {chosen})")
    settings: dict[str, object] = {"comparison": chosen}
    if bound_from is not None:
        try:
            calibration = read_calibration(bound_from)
        except BoundFileError as err:
            _fail(str(err))
        settings.update(result_bound=calibration.result_bound, update_bound=calibration.update_bound,
                        calibration_cid=calibration.calibrated.cid,
                        calibrated_result_max=calibration.calibrated.result_max,
                        calibrated_update_max=calibration.calibrated.update_max)
    if bound is not None:
        settings["result_bound"] = bound
    if update_bound is not None:
        settings["update_bound"] = update_bound
    if force_bound:
        settings["force_bound"] = True
    return settings


def _check_given_flags(config: RunConfig) -> None:
    """Refuse a flag given on the command line that ``config`` gives no effect (protocol/flag_effects)."""
    from click.core import ParameterSource

    from bmoe.protocol.flag_effects import NEEDS, check_given_settings

    context = click.get_current_context()
    check_given_settings(config, [name for name in NEEDS
                                  if context.get_parameter_source(name) == ParameterSource.COMMANDLINE])


def _show_mining_cost(config: RunConfig) -> None:
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


def _check_in_process(config: RunConfig) -> None:
    """Refuse a fleet profile that only an edge process can honour (it sets environment variables)."""
    from bmoe.protocol.setup import in_process_profiles

    in_process_profiles(config)


def _check_run_dir_free(run_dir: Path) -> None:
    """Refuse a run directory that is (or lies under) a file, or holds an entry of the wrong kind."""
    from bmoe.protocol.run_dir import check_layout

    check_layout(run_dir)


SUMMARY_COLUMNS = [("framework", "framework"), ("malicious_ratio", "malicious"), ("attack", "attack"),
                   ("rounds", "rounds"), ("test_accuracy", "test acc"), ("rejected_results", "rejected"),
                   ("misbehaviour_records", "misbehaviour"), ("head_hash", "head hash")]


@app.command()
@click.option("--rounds", type=int, default=150, show_default=True, help="training rounds per run")
@click.option("--malicious-ratio", type=float, default=0.3, show_default=True,
              help="share of malicious edges under attack")
@click.option("--out", type=click.Path(path_type=Path), default=Path("runs/demo"), show_default=True,
              help="where the four run directories go")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--fleet", default=None, help="edges' numeric profiles PROFILE=COUNT,... in edge order "
              "[default: threads1=3,f64=3,chunked=2,threads2=2, a mixed fleet]")
@comparison_options
def demo(rounds: int, malicious_ratio: float, out: Path, seed: int, fleet: str | None, comparison: str | None,
         bound: float | None, update_bound: float | None, bound_from: Path | None, force_bound: bool) -> None:
    """B-MoE vs the traditional framework, without and with colluding Gaussian attackers (digits data,
    a mixed fleet, tolerance comparison)."""
    from bmoe.experiments.demo import DEMO_DEFAULTS, run_demo

    settings = comparison_settings(comparison, bound, update_bound, bound_from, force_bound,
                                   default=DEMO_DEFAULTS.comparison)
    base = _config(**{**DEMO_DEFAULTS.to_dict(), "rounds": rounds, "seed": seed,
                      "fleet": DEMO_DEFAULTS.fleet if fleet is None else fleet, **settings})
    _check_in_process(base)
    if not 0 < malicious_ratio < 1:
        _fail(f"--malicious-ratio must be in (0, 1) for the demo, got {malicious_ratio}")
    _check_run_dir_free(out)
    if out.exists():
        _fail(f"{out} already exists; remove it or pass --out to a new directory")
    with round_progress() as track:
        rows = run_demo(base, malicious_ratio, out, track)
    by_name = {row["name"]: row for row in rows}
    attacked = f"r{malicious_ratio:.1f}"
    share = f"{malicious_ratio:.0%}"
    served = [{"framework": framework, "clean": by_name[f"{framework}-r0.0"]["test_accuracy"],
               "persistent": by_name[f"{framework}-r0.0"]["served_persistent"],
               "transient": by_name[f"{framework}-r0.0"]["served_transient"]} for framework in ("bmoe", "traditional")]
    console.print(results_table(f"Trained clean, served among {share} attackers", served,
                                [("framework", "framework"), ("clean", "no attack"),
                                 ("persistent", "noise kept"), ("transient", "fresh noise")]))
    b_served, t_served = served
    console.print(f"Attackers strike with the paper's probability 0.2 per round. Under the paper's reading (an edge "
                  f"keeps the noise it injects), B-MoE serves "
                  f"{b_served['persistent']:.4f}, as without attack; the traditional framework falls to "
                  f"{t_served['persistent']:.4f} ({t_served['persistent'] / t_served['clean'] - 1:+.0%}). With "
                  f"fresh noise per strike instead, traditional serves {t_served['transient']:.4f}.",
                  highlight=False)
    trained = [{"framework": framework, "clean": by_name[f"{framework}-r0.0"]["test_accuracy"],
                "attacked": by_name[f"{framework}-{attacked}"]["test_accuracy"],
                "records": by_name[f"{framework}-{attacked}"]["misbehaviour_records"]
                if framework_of(framework).verifies else None}
               for framework in ("bmoe", "traditional")]
    console.print(results_table(f"Trained among {share} colluding attackers", trained,
                                [("framework", "framework"), ("clean", "no attack"), ("attacked", "attacked"),
                                 ("records", "misbehaviour")]))
    console.print("Test accuracy. Trained among attackers, the traditional gate routes around the attacked experts "
                  "(the paper's Fig. 2), so on this small dataset training among them costs it little or nothing "
                  "(docs/results.md); B-MoE records every manipulated result and accepts what a clean run "
                  "accepts.", highlight=False)
    console.print(f"digits, N=10, K=3, M=10, fleet {base.fleet or 'default'}, comparison {base.comparison}; "
                  f"run directories, head hashes and demo.json in {out}; check a chain with: "
                  f"bmoe audit {out}/bmoe-{attacked}", highlight=False)
    (out / "demo.json").write_text(json.dumps(rows, indent=2) + "\n")


@app.command()
@click.option("--run-dir", type=click.Path(path_type=Path), default=None,
              help="run directory (chain, store, config, metrics); required unless --cluster")
@click.option("--cluster", type=click.Path(path_type=Path), default=None,
              help="train on the local cluster in this directory (bmoe cluster up); its settings apply")
@click.option("--framework", default="bmoe", show_default=True, help="bmoe | traditional")
@click.option("--dataset", default="digits", show_default=True, help="digits | fashion-mnist | cifar10 | synthetic")
@click.option("--data-dir", type=click.Path(path_type=Path), default=None, help="directory holding the dataset")
@click.option("--rounds", type=int, default=100, show_default=True, help="training rounds T")
@click.option("--batch-size", type=int, default=100, show_default=True, help="samples per task")
@click.option("--experts", "-n", type=int, default=10, show_default=True, help="number of experts N")
@click.option("--top-k", "-k", type=int, default=3, show_default=True, help="experts per sample K")
@click.option("--edges", "-m", type=int, default=10, show_default=True, help="number of edges M")
@click.option("--expert", default="mlp", show_default=True, help="mlp | cnn | mlp-int (integer arithmetic)")
@click.option("--lr", type=float, default=0.1, show_default=True, help="SGD learning rate")
@click.option("--balance", type=float, default=0.01, show_default=True, help="load-balancing loss weight")
@click.option("--malicious-ratio", type=float, default=0.0, show_default=True, help="share of malicious edges")
@click.option("--attack", default="gaussian", show_default=True,
              help="gaussian | gaussian_persistent | sign_flip | scale | random | replay | withhold | sleeper | "
              "bound_hug")
@click.option("--attack-param", multiple=True, help="NAME=NUMBER, e.g. probability=0.2 (repeatable)")
@click.option("--collude/--no-collude", default=True, show_default=True,
              help="malicious edges share their random choices")
@click.option("--assignment", default="all", show_default=True,
              help="all (every edge computes every activated expert) | sampled (r edges per expert) | adaptive "
              "(fewer where the drawn edges are trusted)")
@click.option("--replicas", type=int, default=3, show_default=True, help="r for --assignment sampled or adaptive")
@click.option("--trusted-replicas", type=int, default=2, show_default=True,
              help="adaptive: the sample when the edges drawn are all trusted (at least 2)")
@click.option("--trust-after", type=int, default=20, show_default=True,
              help="adaptive: accepted answers in a row, since an edge's last accusation, that earn it trust")
@click.option("--stake", type=int, default=0, show_default=True,
              help="each edge's stake at enrolment, whole units (0: no stake, rewards or slashing)")
@click.option("--reward", type=int, default=1, show_default=True, help="units per answer in an accepted group")
@click.option("--slash", type=int, default=100, show_default=True, help="units taken per proven dissent")
@click.option("--min-stake", type=int, default=0, show_default=True,
              help="an edge holding less is no longer assigned")
@click.option("--rule", default="majority", show_default=True, help="majority | fraction | plurality")
@click.option("--rule-fraction", type=float, default=2 / 3, help="quorum for --rule fraction (default 2/3)")
@click.option("--difficulty", type=int, default=8, show_default=True, help="PoW difficulty in leading zero bits")
@click.option("--consensus", default="pow", show_default=True, help="pow (one proposer mines) | pbft (validators vote)")
@click.option("--validators", type=int, default=1, show_default=True, help="PBFT validators n (f = (n-1)//3)")
@click.option("--byzantine-validators", type=int, default=0, show_default=True,
              help="PBFT: how many validators misbehave (the first ones)")
@click.option("--validator-attack", default="tamper", show_default=True,
              help="tamper | silent | equivocate | garbage | replay")
@click.option("--message-delay", type=float, default=0.01, show_default=True,
              help="PBFT: simulated one-way message delay in seconds")
@click.option("--share-compute/--no-share-compute", default=True, show_default=True,
              help="compute identical honest replicas once")
@click.option("--eval-every", type=int, default=10, show_default=True, help="rounds between test evaluations")
@click.option("--stall-after", type=int, default=None,
              help=f"stop (exit 3, 'quorum stalled') after N tasks in a row without quorum; 0: never "
                   f"[{DEFAULT_STALL_AFTER}; on a cluster: set by `bmoe cluster up`]")
@click.option("--limit-train", type=int, default=None, help="use only this many training samples")
@click.option("--limit-test", type=int, default=None, help="use only this many test samples")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--threads", type=int, default=1, show_default=True,
              help="torch threads (bit-exact agreement needs equal counts on every edge)")
@click.option("--fleet", default="", help="edges' numeric profiles PROFILE=COUNT,... in edge order, e.g. "
              "threads1=4,threads2=3,f64=3 (default: every edge 'default')")
@click.option("--validator-fleet", default="", help="PBFT validators' numeric profiles PROFILE=COUNT,... in "
              "validator order (in-process profiles; default: every validator 'default')")
@store_options
@ledger_options
@comparison_options
def train(run_dir: Path | None, cluster: Path | None, framework: str, dataset: str, data_dir: Path | None,
          rounds: int, batch_size: int,
          experts: int, top_k: int, edges: int, expert: str, lr: float, balance: float, malicious_ratio: float,
          attack: str, attack_param: tuple[str, ...], collude: bool, assignment: str, replicas: int,
          trusted_replicas: int, trust_after: int, stake: int, reward: int, slash: int, min_stake: int, rule: str,
          rule_fraction: float,
          difficulty: int, consensus: str, validators: int, byzantine_validators: int, validator_attack: str,
          message_delay: float, share_compute: bool, eval_every: int, stall_after: int | None, limit_train: int | None,
          limit_test: int | None, seed: int, threads: int, fleet: str, validator_fleet: str, comparison: str | None,
          bound: float | None, update_bound: float | None, bound_from: Path | None, force_bound: bool,
          store: str | None, ipfs_api: str | None, ledger: str | None, rpc_url: str | None,
          eth_key: str | None) -> None:
    """Train a B-MoE (or traditional) model; resumes a killed B-MoE run in the same --run-dir."""
    from bmoe.experiments.runs import run_store, train_run

    if cluster is not None:
        from bmoe.net.publisher import publish_command

        if stall_after is not None:
            _fail("on a cluster the validator watches for a stall: set it with `bmoe cluster up --stall-after N`")
        click.get_current_context().invoke(publish_command, cluster_dir=cluster, rounds=rounds)
        return
    if run_dir is None:
        _fail("--run-dir is required (or --cluster DIR to train on a local cluster)")
    assert run_dir is not None

    config = _config(framework=framework, dataset=dataset, data_dir=None if data_dir is None else str(data_dir),
                     rounds=rounds, batch_size=batch_size, num_experts=experts, top_k=top_k, num_edges=edges,
                     expert=expert, lr=lr, balance=balance, malicious_ratio=malicious_ratio, attack=attack,
                     attack_params=_parse_params(list(attack_param)), collude=collude, assignment=assignment,
                     replicas=replicas, trusted_replicas=trusted_replicas, trust_after=trust_after, stake=stake,
                     reward=reward, slash=slash, min_stake=min_stake, rule=rule,
                     rule_fraction=rule_fraction, difficulty=difficulty, validators=validators,
                     byzantine_validators=byzantine_validators, validator_attack=validator_attack,
                     message_delay=message_delay, share_compute=share_compute,
                     eval_every=eval_every, limit_train=limit_train, limit_test=limit_test, seed=seed,
                     threads=threads, fleet=fleet, validator_fleet=validator_fleet,
                     stall_after=DEFAULT_STALL_AFTER if stall_after is None else stall_after,
                     **comparison_settings(comparison, bound, update_bound, bound_from, force_bound),
                     **store_settings(run_dir, store, ipfs_api),
                     **ledger_settings(run_dir, ledger, consensus, rpc_url, eth_key))
    _check_given_flags(config)
    _check_in_process(config)
    _check_run_dir_free(run_dir)
    _show_mining_cost(config)
    from bmoe.protocol.fit import load_run_dataset
    from bmoe.protocol.session import Session

    data = load_run_dataset(config)
    with run_store(config) as objects, Session(config, dataset=data, run_dir=run_dir, store=objects) as session:
        print_bound_in_force(config)
        with round_progress() as track:
            summary = train_run(config, run_dir, track(f"{framework} training", rounds), session=session)
    console.print(results_table(f"training: {run_dir}", [summary], SUMMARY_COLUMNS))


@app.command()
@click.argument("figure", type=click.Choice(["fig2", "fig4a", "fig4b", "fig4c", "gap", "all"]))
@click.option("--dataset", default="fashion-mnist", show_default=True, help="fashion-mnist | cifar10 | digits")
@click.option("--data-dir", type=click.Path(path_type=Path), default=None, help="directory holding the dataset")
@click.option("--quick", is_flag=True, help="fewer rounds and test samples, same shapes of result (<= 5 min)")
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="output directory [default: runs/reproduction-DATASET[-quick]]")
@click.option("--rounds", type=int, default=None, help="override the number of training rounds")
@click.option("--workers", type=int, default=2, show_default=True, help="runs in parallel")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--noise-std", type=float, default=0.5, show_default=True, help="Gaussian attack's noise scale")
@click.option("--bandwidth-mbps", type=float, default=100.0, show_default=True, help="Fig. 4b link model")
@click.option("--block-interval", type=float, default=0.0, show_default=True,
              help="Fig. 4b: modelled seconds per block on top of the consensus measured")
@click.option("--consensus", default="pow", show_default=True, help="pow | pbft: the engine sealing B-MoE's blocks")
@click.option("--validators", type=int, default=4, show_default=True, help="PBFT validators")
@click.option("--message-delay", type=float, default=0.01, show_default=True, help="PBFT one-way delay (s)")
@click.option("--cluster", is_flag=True,
              help="Fig. 4b: also measure B-MoE (all, sampled r = 2 and 3) and traditional on a local cluster "
              "of processes (fig4b_cluster.*)")
@click.option("--cluster-rounds", type=int, default=None, help="training rounds per variant on the cluster [10; "
              "--quick: 5]")
def reproduce(figure: str, dataset: str, data_dir: Path | None, quick: bool, out: Path | None, rounds: int | None,
              workers: int, seed: int, noise_std: float, bandwidth_mbps: float, block_interval: float,
              consensus: str, validators: int, message_delay: float, cluster: bool, cluster_rounds: int | None) -> None:
    """Reproduce the paper's figures 2, 4a, 4b and 4c under both readings of its attack, and the training-gap
    experiment (gap), with plots, CSV/JSON and REPORT.md; resumes."""
    import dataclasses

    from bmoe.experiments.reproduction.reproduce import reproduce as run_reproduction
    from bmoe.experiments.reproduction.settings import FIGURES, LatencyModel, ReproSettings
    from bmoe.experiments.reproduction.settings import quick as quick_settings
    from bmoe.ledger.sealing import validators_supported

    if dataset not in ("fashion-mnist", "cifar10", "digits"):
        _fail(f"reproduce supports --dataset fashion-mnist, cifar10 or digits, got {dataset!r}")
    for name, value in (("--workers", workers), ("--rounds", rounds if rounds is not None else 1)):
        if value < 1:
            _fail(f"{name} must be >= 1")
    if bandwidth_mbps <= 0 or block_interval < 0 or noise_std < 0:
        _fail("--bandwidth-mbps must be > 0, --block-interval and --noise-std >= 0")
    if consensus not in ("pow", "pbft") or validators < 1 or message_delay <= 0:
        _fail("--consensus must be pow or pbft, --validators >= 1 and --message-delay > 0")
    if (cluster or cluster_rounds is not None) and figure not in ("fig4b", "all"):
        _fail("--cluster measures Fig. 4b: use it with fig4b or all")
    if cluster_rounds is not None and (not cluster or cluster_rounds < 2):
        _fail("--cluster-rounds needs --cluster and at least 2 rounds (round 1 pays for start-up)")
    if cluster and consensus == "pbft" and not validators_supported(consensus, validators, one_process_each=True):
        _fail("--cluster with --consensus pbft needs --validators 4 or more (one process each)")
    settings = ReproSettings(dataset=dataset, data_dir=None if data_dir is None else str(data_dir), seed=seed,
                             workers=workers, noise_std=noise_std, consensus=consensus, validators=validators,
                             message_delay=message_delay, latency=LatencyModel(bandwidth_mbps, block_interval))
    if dataset == "digits":
        settings = dataclasses.replace(settings, batch_size=100, rounds=300, serve_batch=20)
    if quick:
        settings = quick_settings(settings)
        if dataset == "digits":  # its 359 test samples are fewer than the quick limit: use them all
            settings = dataclasses.replace(settings, limit_test=None, serve_batch=20)
    if rounds is not None:
        settings = dataclasses.replace(settings, rounds=rounds, eval_every=max(1, min(settings.eval_every, rounds)))
    target = out if out is not None else Path(f"runs/reproduction-{dataset}{'-quick' if quick else ''}")
    _check_run_dir_free(target)
    figures = FIGURES if figure == "all" else (figure,)
    command = "bmoe reproduce " + " ".join(sys.argv[2:]) if len(sys.argv) > 2 else "bmoe reproduce"
    measured_rounds = (cluster_rounds or (5 if quick else 10)) if cluster else None
    claims = run_reproduction(settings, figures, target, err_console, command, cluster_rounds=measured_rounds)
    console.print(f"figures, tables and REPORT.md in {target}")
    for name, ok in claims.get("checks", {}).items():
        console.print(f"  [{'green' if ok else 'red'}]{'holds' if ok else 'FAILS'}[/]  {name}")


@app.command()
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
        _fail(f"{out} already exists; keys are never overwritten")
    entries = load_enrolment(enrolment) if enrolment is not None and enrolment.exists() else {}
    if name in entries:
        _fail(f"{name!r} is already enrolled in {enrolment}")
    identity = generate_identity(name)
    try:
        create_identity(out, identity)
    except LedgerError as exc:
        _fail(str(exc))
    if enrolment is not None:
        save_enrolment(enrolment, {**entries, name: identity.address})
    console.print(f"{name} {identity.address}", highlight=False)


def _load_run_config(run_dir: Path) -> RunConfig:
    from bmoe.protocol.run_dir import CONFIG_FILE, read_config_file

    if not run_dir.is_dir():
        _fail(f"run directory {run_dir} does not exist or is not a directory")
    return read_config_file(run_dir / CONFIG_FILE)


@app.command()
@click.argument("run_dir", type=click.Path(path_type=Path), required=False)
@click.option("--cluster", type=click.Path(path_type=Path), default=None,
              help="serve on the local cluster in this directory instead of a run directory")
@click.option("--malicious-ratio", type=float, default=None, help="deploy among this share of attackers")
@click.option("--attack", default=None, help="the attackers' behaviour")
@click.option("--limit", type=int, default=None, help="serve only the first N test samples")
@click.option("--fleet", default=None, help="serve on edges with these numeric profiles, PROFILE=COUNT,... "
              "[the run's]")
@store_options
@ledger_options
def infer(run_dir: Path | None, cluster: Path | None, malicious_ratio: float | None, attack: str | None,
          limit: int | None, fleet: str | None, store: str | None, ipfs_api: str | None, ledger: str | None,
          rpc_url: str | None, eth_key: str | None) -> None:
    """Serve the test set through the framework (steps 1-3 and 6), sealing inference blocks."""
    from bmoe.protocol.session import Session

    if cluster is not None:
        from bmoe.net.publisher import publish_command

        if malicious_ratio is not None or attack is not None or fleet is not None:
            _fail("on a cluster the edges' behaviours and profiles are set by `bmoe cluster up`")
        click.get_current_context().invoke(publish_command, cluster_dir=cluster, infer=True, limit=limit)
        return
    if run_dir is None:
        _fail("give a RUN_DIR (or --cluster DIR)")
    assert run_dir is not None

    config = _load_run_config(run_dir)
    config = config.replace(**store_settings(run_dir, store, ipfs_api),
                            **ledger_settings(run_dir, ledger, None, rpc_url, eth_key))
    if not framework_of(config.framework).keeps_ledger:
        _fail("only B-MoE run directories keep a ledger to serve from")
    if not (run_dir / "chain.sqlite").exists():
        _fail(f"{run_dir} has no chain.sqlite: not a B-MoE run directory")
    deployed = config.replace(**{k: v for k, v in {"malicious_ratio": malicious_ratio,
                                                    "attack": attack, "fleet": fleet}.items() if v is not None})
    _check_in_process(_config(**deployed.to_dict()))
    if limit is not None and limit < 1:
        _fail(f"--limit must be >= 1, got {limit}")
    from bmoe.experiments.runs import run_store

    with run_store(config) as objects, \
            Session(config.replace(limit_test=limit) if limit else config, run_dir=run_dir, store=objects) as session:
        session.set_edge_behaviours(deployed)
        session.set_edge_profiles(deployed)
        accuracy = session.infer_test_set()
        row = {"framework": config.framework, "malicious_ratio": deployed.malicious_ratio,
               "attack": deployed.attack if deployed.malicious_edges else "none",
               "test_accuracy": accuracy, "head_hash": session.head_hash}
    console.print(results_table(f"inference: {run_dir}", [row], [SUMMARY_COLUMNS[i] for i in (0, 1, 2, 4, 7)]))


@app.command()
@click.argument("file", type=click.Path(path_type=Path))
def cid(file: Path) -> None:
    """Print the CID that `ipfs add --cid-version 1 --only-hash FILE` prints (FILE: a regular file)."""
    from bmoe.fileio import open_regular_file
    from bmoe.storage import cid_of_stream

    try:
        with open_regular_file(file) as handle:  # a FIFO or a device is refused before it is opened
            text = cid_of_stream(handle)  # read 256 KiB at a time: memory stays bounded
    except OSError as err:
        _fail(f"{file}: {err.strerror or err}")
    console.print(text, highlight=False)


# The errors reported in one line with exit status 2, as "module:class": main() imports none of them (a command
# that never loaded a module cannot have raised its error).
USER_ERRORS = ("bmoe.protocol.config_checks:ConfigError", "bmoe.data.errors:DataError",
               "bmoe.ledger.errors:LedgerError", "bmoe.storage.errors:StorageError", "bmoe.net.errors:NetError",
               "bmoe.moe.payloads:PayloadError", "bmoe.ethereum.errors:EthereumError")


def _loaded(targets: tuple[str, ...]) -> tuple[type[BaseException], ...]:
    """The exception classes named ``"module:class"`` whose modules this process has imported."""
    classes = []
    for target in targets:
        module_name, _, name = target.partition(":")
        module = sys.modules.get(module_name)
        if module is not None:
            classes.append(getattr(module, name))
    return tuple(classes)


def main() -> None:
    """Entry point: run the app, turning user errors into one line and exit status 2."""
    try:
        app.main(standalone_mode=False)
    except (UserError, *_loaded(USER_ERRORS)) as err:
        err_console.print(f"error: {err}", highlight=False, markup=False, soft_wrap=True)
        sys.exit(EXIT_USAGE)
    except _loaded(("bmoe.ledger.node:ConsensusStalled",)) as err:
        err_console.print(f"error: consensus stalled: {err}", highlight=False, markup=False, soft_wrap=True)
        sys.exit(3)
    except _loaded(("bmoe.verify.comparison:HonestDisagreement", "bmoe.protocol.quorum_watch:QuorumStalled")) as err:
        err_console.print(f"error: {err}", highlight=False, markup=False, soft_wrap=True)
        sys.exit(3)
    except click.ClickException as err:
        err_console.print(f"error: {err.format_message()}", highlight=False, markup=False, soft_wrap=True)
        sys.exit(EXIT_USAGE)
    except click.exceptions.Abort:
        err_console.print("aborted")
        sys.exit(130)
