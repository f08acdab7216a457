"""``bmoe lm train --cluster DIR``: publish training rounds to a language model's deployment (``bmoe lm cluster``)
and record its curves in ``DIR/history.json``.

The deployment's settings apply (``DIR/lm.json``); of ``bmoe lm train``'s flags only ``--steps`` (how many more
rounds), ``--cache-dir`` and ``--quiet`` mean anything here, and any other given is refused. The corpus is read
from the cache and tokenized with the deployment's tokenizer (``DIR/tokenizer.json``).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource

from bmoe.cli.errors import fail
from bmoe.console import console, err_console, results_table

ALLOWED = {"cluster", "cache_dir", "quiet", "steps"}
HISTORY_FILE = "history.json"


def train_on_cluster(root: Path, cache_dir: Path | None, quiet: bool) -> None:
    """Publish the rounds (``--steps`` more, else on to the settings' steps), recording ``DIR/history.json`` after
    every round; print the round latency, the validation loss and the head."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from bmoe.atomic_write import write_atomically
    from bmoe.ledger.keys import load_identity
    from bmoe.lm.tokenizer import tokenizer_from_bytes
    from bmoe.net.cluster_file import load_cluster
    from bmoe.net.publish.lm import LMDeployment, publish_lm_training
    from bmoe.run.lm.artifacts import read_history
    from bmoe.run.lm.settings_file import read_lm_settings
    from bmoe.run.lm.text import load_text

    context = click.get_current_context()
    given = sorted(name for name in context.params if name not in ALLOWED
                   and context.get_parameter_source(name) == ParameterSource.COMMANDLINE)
    if given:
        fail(f"--cluster {root}: the deployment's settings apply ({root}/lm.json); drop "
             f"{', '.join('--' + name.replace('_', '-') for name in given)}")
    cluster = load_cluster(root)
    if cluster.lm is None or cluster.tokenizer is None:
        fail(f"{root} holds a classifier's cluster: train it with `bmoe train --cluster {root}`")
    assert cluster.lm is not None and cluster.tokenizer is not None
    config = read_lm_settings(cluster.path(cluster.lm))
    try:
        tokenizer = tokenizer_from_bytes(cluster.path(cluster.tokenizer).read_bytes())
    except (OSError, ValueError) as exc:
        fail(f"cannot read the deployment's tokenizer {cluster.path(cluster.tokenizer)}: {exc}")
    given_steps = context.get_parameter_source("steps") == ParameterSource.COMMANDLINE
    steps = context.params["steps"] if given_steps else None  # None: on to the settings' steps
    text = load_text(config.lm, cache_dir, tokenizer)
    validator = cluster.by_role("validator")[0]
    deployment = LMDeployment(cluster.validator, validator.address, list(cluster.stores),
                              load_identity(cluster.path(cluster.publisher_key)), config)
    path = root / HISTORY_FILE
    previous = read_history(path)  # what earlier runs recorded (an unreadable file counts as none)
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("loss {task.fields[loss]}"), TimeElapsedColumn(), console=err_console,
                  disable=quiet) as progress:
        bar = progress.add_task("cluster lm", total=steps, loss="-")

        def on_round(history: dict[str, list[dict[str, Any]]]) -> None:
            """Each round's record on disk as it is sealed: a run stopped later keeps what was published."""
            merged = {key: previous[key] + history[key] for key in ("rounds", "validation")}
            write_atomically(path, (json.dumps(merged, indent=1, sort_keys=True) + "\n").encode())
            loss = history["rounds"][-1]["loss"]
            progress.update(bar, advance=1, loss=f"{loss:.3f}" if loss is not None else "-")

        history = publish_lm_training(deployment, text, steps, on_round=on_round)
    final = history["validation"][-1] if history["validation"] else None
    seconds = [row["round_seconds"] for row in history["rounds"]]
    rows = [{"rounds": len(seconds), "round_s": f"{sum(seconds) / max(1, len(seconds)):.3f}",
             "val_loss": f"{final['loss']:.3f}" if final else "-",
             "bits_per_char": f"{final['loss'] / math.log(2) / text.characters_per_token:.3f}" if final else "-",
             "misbehaviour": sum(row["misbehaviour"] for row in history["rounds"]),
             "head": (final or {}).get("head_hash", "")[:16]}]
    console.print(results_table(f"language model on the cluster {root}", rows, [
        ("rounds", "rounds"), ("round_s", "round latency (s)"), ("val_loss", "val loss (nats/token)"),
        ("bits_per_char", "bits/char"), ("misbehaviour", "misbehaviour"), ("head", "head hash")]))
