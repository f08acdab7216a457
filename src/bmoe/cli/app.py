"""The ``bmoe`` command: demo, train, infer, audit, cid.

User errors (bad flags, missing data, unreadable run directories, tampered chains) print one line
on stderr and exit with status 2; nothing is written before the inputs are validated.
"""


from __future__ import annotations

import sys

import click

from bmoe.cli.cid import cid
from bmoe.cli.demo import demo
from bmoe.cli.errors import EXIT_USAGE, UserError
from bmoe.cli.infer import infer
from bmoe.cli.keygen import keygen
from bmoe.cli.lazy_group import LazyCommand, LazyGroup
from bmoe.cli.reproduce import reproduce
from bmoe.cli.train import train
from bmoe.console import err_console

# The commands defined in other modules, imported only when run (lazy_group): where each lives, and the first
# sentence of its help as `bmoe --help` lists it (tests/test_imports.py checks it against the command's own help).
SERVICE_COMMANDS = {
    "audit": LazyCommand("bmoe.cli.audit:audit_command", "Replay the chain from its genesis and check every "
                         "hash, signature, seal, state root and object."),
    "store": LazyCommand("bmoe.net.store.command:store_command", "Run a storage node: a signed HTTP blob store that "
                         "replicates to its peers."),
    "validator": LazyCommand("bmoe.net.validator.command:validator_command", "Run the validator: the round's ledger "
                             "side, edges and publisher over HTTP."),
    "edge": LazyCommand("bmoe.net.edge.command:edge_command", "Run one edge: poll the validator for work, compute "
                        "experts, post signed commitments."),
    "publish": LazyCommand("bmoe.net.publish.command:publish_command", "Publish training rounds (or serve the test "
                           "set) to a deployed validator."),
    "cluster": LazyCommand("bmoe.cli.cluster:cluster_group", "A local deployment: storage nodes, one validator and "
                           "M edges as processes."),
    "calibrate": LazyCommand("bmoe.experiments.calibration.command:calibrate_command", "Measure honest divergence "
                             "across the fleet's numeric profiles and recommend a tolerance bound."),
    "bound": LazyCommand("bmoe.cli.bound:bound_command", "The replicas r that sampled replication needs, and "
                         "the escape probability per r."),
    "records": LazyCommand("bmoe.cli.records:records_command", "Each edge's record (committed, accepted, "
                           "dissent, withheld) and, with stake, its account."),
    "sweep-sampling": LazyCommand("bmoe.experiments.sampling_sweep.command:sweep_sampling_command", "Accuracy "
                                  "under a colluding attack with r sampled replicas against `all`, and manipulated "
                                  "results accepted against the bound C(c, r)/C(M, r)."),
    "export-car": LazyCommand("bmoe.cli.car:export_car_command", "Write every object of RUN_DIR's store as one "
                              "CAR v1 file (roots: the objects) for `ipfs dag import`."),
    "import-car": LazyCommand("bmoe.cli.car:import_car_command", "Read a CAR v1 file, check every block and "
                              "every root object, then store the root objects."),
    "lm": LazyCommand("bmoe.cli.lm:lm_group", "Mixture-of-Experts language models: data, training through "
                      "B-MoE, sampling, checkpoints."),
    "serve": LazyCommand("bmoe.cli.serve:serve_command", "Serve a language model behind the OpenAI HTTP API, every "
                         "response with its receipt."),
    "replay": LazyCommand("bmoe.cli.replay:replay_command", "Regenerate a verified generation from its receipt, "
                          "the ledger and the store, and re-check its expert calls."),
    "explorer": LazyCommand("bmoe.explorer.command:explorer_command", "A read-only web explorer of a run's ledger "
                            "(blocks, tasks, edges, experts, curves, audit), or of a live local cluster."),
}


@click.group(cls=LazyGroup, lazy_commands=SERVICE_COMMANDS,
             help="B-MoE: Mixture-of-Experts on untrusted edges, verified on a ledger.")
@click.version_option(package_name="bmoe")
def app() -> None:
    pass


for command in (demo, train, reproduce, keygen, infer, cid):
    app.add_command(command)


# The errors reported in one line with exit status 2, as "module:class": main() imports none of them (a command
# that never loaded a module cannot have raised its error).
USER_ERRORS = ("bmoe.run.config_checks:ConfigError", "bmoe.data.errors:DataError",
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
