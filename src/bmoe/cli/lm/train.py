"""``bmoe lm train``: train a Mixture-of-Experts language model through B-MoE (or the traditional framework) on
the complete Shakespeare, in one process, into a run directory (docs/lm.md)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import click

from bmoe.cli.comparison_options import comparison_options, comparison_settings
from bmoe.cli.errors import fail
from bmoe.cli.ledger_options import ledger_options, ledger_settings
from bmoe.cli.lm.options import cache_dir_option, lm_options, lm_values
from bmoe.console import console, err_console, results_table
from bmoe.run.lm.config import PROTOCOL_SETTINGS
from bmoe.run.settings.options import given_settings, options_of
from bmoe.run.settings.registry import SETTINGS
from bmoe.run.settings.setting import TRAIN


@click.command("train")
@click.option("--run-dir", type=click.Path(path_type=Path), default=None,
              help="a new run directory (chain, store, settings, curves); required unless --cluster")
@click.option("--cluster", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="train on the language model's deployment in this directory (bmoe lm cluster): its settings "
                   "apply; --steps says how many more rounds to publish")
@cache_dir_option
@click.option("--init", "init_dir", type=click.Path(path_type=Path), default=None,
              help="start from a Mixtral checkpoint (bmoe lm export's): its weights, shape and tokenizer")
@click.option("--prune", is_flag=True,
              help="keep only the objects the ledger's state names and the evidence behind its records (a long run's "
                   "expert objects fill ~38 MB a round otherwise); its history can then no longer be audited")
@click.option("--quiet", is_flag=True, help="no progress bar")
@lm_options
@options_of(tuple(SETTINGS[name] for name in PROTOCOL_SETTINGS), TRAIN)
@ledger_options
@comparison_options
def train_command(run_dir: Path | None, cluster: Path | None, cache_dir: Path | None, init_dir: Path | None,
                  prune: bool, quiet: bool, comparison: str | None,
                  bound: float | None, update_bound: float | None, bound_from: Path | None, force_bound: bool,
                  ledger: str | None, rpc_url: str | None, eth_key: str | None, **values: Any) -> None:
    """Train a Mixture-of-Experts language model through B-MoE on the complete Shakespeare."""
    from bmoe.run.lm.config import LMRunConfig
    from bmoe.run.lm.text import load_text

    if cluster is not None:
        from bmoe.cli.lm.cluster_training import train_on_cluster

        train_on_cluster(cluster, cache_dir, quiet)
        return
    if run_dir is None:
        fail("--run-dir is required (or --cluster DIR to train on a language model's deployment)")
    lm = lm_values(values)
    given = given_settings(TRAIN, values)
    run = {**given, **comparison_settings(comparison, bound, update_bound, bound_from, force_bound),
           **ledger_settings(None, ledger, given.get("consensus"), rpc_url, eth_key)}
    initial, tokenizer = None, None
    if init_dir is not None:
        initial, tokenizer = _checkpoint(init_dir, lm)
    config = LMRunConfig.build(lm, run)
    text = load_text(config.lm, cache_dir, tokenizer)
    _train(config, text, run_dir, quiet, initial, not prune)


# the settings a checkpoint fixes, and its config's names for them
SHAPE = {"layers": "num_hidden_layers", "hidden_size": "hidden_size", "intermediate_size": "intermediate_size",
         "heads": "num_attention_heads", "kv_heads": "num_key_value_heads", "lm_experts": "num_local_experts",
         "lm_top_k": "num_experts_per_tok", "context": "max_position_embeddings",
         "tie_embeddings": "tie_word_embeddings", "aux_loss": "router_aux_loss_coef", "z_loss": "router_z_loss_coef"}


def _checkpoint(init_dir: Path, lm: dict[str, Any]) -> tuple[Any, Any]:
    """A checkpoint's model and tokenizer; its shape replaces the settings' (a shape flag given too is refused)."""
    from click.core import ParameterSource

    from bmoe.cli.lm.checkpoint import TOKENIZER_FILE, read_checkpoint
    from bmoe.lm.tokenizer import tokenizer_from_bytes

    context = click.get_current_context()
    given = [name for name in SHAPE if context.get_parameter_source(name) == ParameterSource.COMMANDLINE]
    if given:
        fail(f"--init {init_dir} fixes the model's shape: do not give {', '.join(given)} with it")
    model, tokenizer_bytes = read_checkpoint(init_dir)
    if tokenizer_bytes is None:
        fail(f"{init_dir} has no {TOKENIZER_FILE}: a run needs the tokenizer the weights were trained with")
    tokenizer = tokenizer_from_bytes(tokenizer_bytes)
    if tokenizer.vocab_size != model.config.vocab_size:
        fail(f"{init_dir}: the tokenizer's {tokenizer.vocab_size} tokens are not the model's vocabulary "
             f"{model.config.vocab_size}")
    lm.update({name: getattr(model.config, field) for name, field in SHAPE.items()})
    lm["tokenizer"] = tokenizer.name
    if tokenizer.name == "bpe":
        lm["bpe_vocab"] = tokenizer.vocab_size  # the settings say the tokenizer the run has
    return model, tokenizer


def _train(config: Any, text: Any, run_dir: Path, quiet: bool, initial: Any = None, keep_objects: bool = True) -> None:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from bmoe.run.lm.session import LMSession, open_run_dir

    with open_run_dir(run_dir):
        session = LMSession(config, text.tokenizer.to_bytes(), text.tokenizer.vocab_size, text.train_ids,
                            text.validation_ids, run_dir, initial, keep_objects)
    steps = config.lm.steps
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("loss {task.fields[loss]}  val {task.fields[val]}"), TimeElapsedColumn(),
                  console=err_console, disable=quiet) as progress:
        bar = progress.add_task(f"{config.run.framework} lm", total=steps, loss="-", val="-")

        def on_round(outcome: Any, lr: float) -> None:
            validation = session.history.validation
            progress.update(bar, completed=outcome.round + 1, loss=f"{outcome.loss:.3f}",
                            val=f"{validation[-1]['loss']:.3f}" if validation else "-")
        try:
            history = session.train(on_round=on_round)
        finally:
            session.close()
    if not history.validation:
        fail("no validation point was recorded")
    final = history.validation[-1]["loss"]
    chars_per_token = text.characters_per_token
    rows = [{"framework": config.run.framework, "rounds": steps, "val_loss": f"{final:.3f}",
             "bits_per_char": f"{final / math.log(2) / chars_per_token:.3f}",
             "misbehaviour": sum(r["misbehaviour"] for r in history.rounds), "head": session.head_hash()[:16]}]
    console.print(results_table("language model", rows, [
        ("framework", "framework"), ("rounds", "rounds"), ("val_loss", "val loss (nats/token)"),
        ("bits_per_char", "bits/char"), ("misbehaviour", "misbehaviour"), ("head", "head hash")]))
