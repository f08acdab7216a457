"""``bmoe lm export`` and ``bmoe lm import``: a run's model as a Hugging Face Mixtral checkpoint, and back.

A checkpoint is ``config.json`` and ``model.safetensors`` as transformers writes them (``lm/checkpoint.py``), plus
bmoe's tokenizer (``bmoe_tokenizer``, the bytes a run stores by CID), so ``bmoe lm train --init DIR`` can start a
run from it. Errors are one line and exit 2; nothing is written half-way.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from bmoe.cli.errors import UserError
from bmoe.console import console

if TYPE_CHECKING:
    from bmoe.lm.model import MoETransformer

TOKENIZER_FILE = "bmoe_tokenizer"


@click.command("export")
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.argument("out_dir", type=click.Path(path_type=Path))
def export_command(run_dir: Path, out_dir: Path) -> None:
    """Write the model a run's ledger holds as a transformers-compatible Mixtral checkpoint."""
    from bmoe.atomic_write import write_atomically
    from bmoe.lm.checkpoint import CheckpointError, save_pretrained
    from bmoe.run.lm.artifacts import open_lm_run

    run = open_lm_run(run_dir)
    try:
        save_pretrained(run.model, out_dir)
        write_atomically(out_dir / TOKENIZER_FILE, run.tokenizer.to_bytes())
    except (CheckpointError, OSError) as err:
        raise UserError(f"cannot export to {out_dir}: {err}") from None
    where = f"block {run.height}" if run.height is not None else "model.json (a traditional run keeps no chain)"
    console.print(f"exported {run_dir}'s model ({where}, trusted part {run.gate_cid[:16]}...) to {out_dir}: "
                  "config.json, model.safetensors, bmoe_tokenizer")


@click.command("import")
@click.argument("checkpoint_dir", type=click.Path(path_type=Path))
def import_command(checkpoint_dir: Path) -> None:
    """Read and check a Mixtral checkpoint; print its shape and the CIDs its objects would have on a ledger."""
    from bmoe.protocol.lm.trusted import initial_objects
    from bmoe.storage import cid_of

    model, tokenizer_bytes = read_checkpoint(checkpoint_dir)
    config = model.config
    parameters = sum(p.numel() for p in model.parameters())
    trusted_object, expert_objects = initial_objects(model, config, cid_of(tokenizer_bytes or b""))
    trusted, experts = cid_of(trusted_object), [cid_of(data) for data in expert_objects]
    console.print(f"{checkpoint_dir}: Mixtral, {config.num_hidden_layers} layers, d={config.hidden_size}, "
                  f"{config.num_local_experts} experts top-{config.num_experts_per_tok}, {config.num_attention_heads} "
                  f"heads ({config.num_key_value_heads} key/value), context {config.max_position_embeddings}, vocab "
                  f"{config.vocab_size}, {parameters:,} parameters")
    console.print(f"trusted part (embedding, attention, norms, routers, head) {trusted}")
    console.print(f"{len(experts)} expert objects, slot 0 {experts[0]} ... slot {len(experts) - 1} {experts[-1]}")
    if tokenizer_bytes is None:
        console.print(f"no {TOKENIZER_FILE}: a run needs bmoe's tokenizer beside the weights (lm export writes it)")
    else:
        console.print(f"tokenizer {cid_of(tokenizer_bytes)} ({TOKENIZER_FILE}); train from this checkpoint with "
                      f"`bmoe lm train --init {checkpoint_dir}` (the CIDs above are its genesis's)")


def read_checkpoint(directory: Path) -> tuple[MoETransformer, bytes | None]:
    """The checkpoint's model and bmoe's tokenizer bytes beside it (None when absent); UserError for a bad one."""
    from bmoe.fileio import read_regular_file
    from bmoe.lm.checkpoint import CheckpointError, load_pretrained

    try:
        model = load_pretrained(directory)
    except CheckpointError as err:
        raise UserError(str(err)) from None
    path = directory / TOKENIZER_FILE
    if not path.exists():
        return model, None
    try:
        return model, read_regular_file(path, limit=64 << 20)
    except OSError as err:
        raise UserError(f"{path}: {err}") from None
