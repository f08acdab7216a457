"""``bmoe lm colluders``: a prompt generated clean, through B-MoE among colluding edges, and by an unverified
deployment among the same edges; the three texts and whether each is the clean one (docs/serving.md, "Among
colluders"). The demonstration itself is ``experiments/lm_colluders.py``."""

from __future__ import annotations

from pathlib import Path

import click

from bmoe.cli.errors import UserError
from bmoe.cli.finite import FiniteFloatRange
from bmoe.console import console
from bmoe.edge.attacks.expert_output import OUTPUT_ATTACKS
from bmoe.lm.pretrained.moefication import DEFAULT_EXPERTS


@click.command("colluders")
@click.option("--run-dir", type=click.Path(path_type=Path), default=None,
              help="a `bmoe lm train` run directory: the model its ledger holds")
@click.option("--model", "model_name", default=None,
              help="a pretrained model by name (smollm2-135m), fetched into the cache first if absent")
@click.option("--experts", type=click.IntRange(min=1), default=DEFAULT_EXPERTS, show_default=True,
              help="a pretrained model's experts a layer (its FFN split into neuron slices, all active)")
@click.option("--prompt", default="The ", show_default=True, help="the text to continue")
@click.option("--tokens", type=click.IntRange(min=1, max=4096), default=48, show_default=True,
              help="tokens to generate")
@click.option("--temperature", type=FiniteFloatRange(min=0.0), default=0.0, show_default=True,
              help="sampling temperature (0: greedy)")
@click.option("--edges", type=click.IntRange(min=3), default=10, show_default=True, help="M, the edges")
@click.option("--colluders", type=click.IntRange(min=1), default=3, show_default=True,
              help="edges lying together with the same attack (fewer than a third of the edges)")
@click.option("--attack", type=click.Choice(OUTPUT_ATTACKS), default="swap", show_default=True,
              help="what every colluder answers instead of its expert's output, on every call")
@click.option("--replicas", type=click.IntRange(min=1), default=3, show_default=True,
              help="edges re-computing each call in B-MoE (at least --colluders: a lying edge always meets an "
                   "honest one)")
@click.option("--chunk-steps", type=click.IntRange(min=1), default=16, show_default=True,
              help="decoding steps per verified chunk")
@click.option("--seed", type=int, default=0, show_default=True, help="the sampler's, the keys' and the colluders' seed")
def colluders_command(run_dir: Path | None, model_name: str | None, experts: int, prompt: str, tokens: int,
                      temperature: float, edges: int, colluders: int, attack: str, replicas: int, chunk_steps: int,
                      seed: int) -> None:
    """Generate text clean, through B-MoE among colluding edges and unverified among them, and compare."""
    import torch

    from bmoe.experiments.lm_colluders import ColludersError, ColludersSettings, run_colluders
    from bmoe.lm.decoding.sampling import SamplingParams

    if (run_dir is None) == (model_name is None):
        raise UserError("give exactly one of --run-dir RUN_DIR and --model NAME (a pretrained model)")
    if run_dir is not None and not run_dir.is_dir():
        raise UserError(f"--run-dir {run_dir}: no such directory")
    try:
        settings = ColludersSettings(edges=edges, colluders=colluders, attack=attack, replicas=replicas,
                                     chunk_steps=chunk_steps, seed=seed)
    except ColludersError as err:
        raise UserError(f"cannot run: {err}") from None
    if model_name is not None:
        from bmoe.lm.pretrained import load_pretrained
        from bmoe.lm.pretrained.catalogue import pretrained_source

        pretrained_source(model_name)  # an unknown name is one line before anything is loaded
        loaded = load_pretrained(model_name, experts)
        model, tokenizer = loaded.model, loaded.tokenizer
    else:
        from bmoe.run.lm.artifacts import open_lm_run

        assert run_dir is not None
        run = open_lm_run(run_dir)
        model, tokenizer = run.model, run.tokenizer
    torch.set_num_threads(1)  # the edges share this process; on a loaded machine a second thread only spins
    try:
        ids = tokenizer.encode(prompt)
        params = SamplingParams(max_tokens=tokens, temperature=temperature, seed=seed)
        outcome = run_colluders(model, ids, params, settings, tokenizer.decode)
    except ValueError as err:
        raise UserError(f"cannot generate: {err}") from None
    console.print(f"{colluders} of {edges} edges collude ({', '.join(map(str, outcome.colluders))}), each answering "
                  f"'{attack}' on every call; B-MoE re-computes every call on {replicas} other edges",
                  markup=False, highlight=False, soft_wrap=True)
    for label, key, same in (("clean (one process, no protocol)", "clean", True),
                             ("B-MoE among the colluders", "verified", outcome.verified_is_clean),
                             ("unverified among the colluders", "unverified", outcome.unverified_is_clean)):
        verdict = "" if key == "clean" else f"  [{'equals' if same else 'DIFFERS from'} the clean text]"
        console.print(f"--- {label}{verdict}", markup=False, highlight=False, soft_wrap=True)
        console.print(prompt + outcome.texts[key], markup=False, highlight=False, soft_wrap=True)
    console.print(f"B-MoE recorded {outcome.accused} colluder(s) and rolled back {outcome.rollbacks} time(s); the "
                  f"unverified deployment used {outcome.lies_unverified} lie(s)", markup=False, highlight=False,
                  soft_wrap=True)
