"""``bmoe serve``: a language model behind the OpenAI HTTP API (docs/serving.md).

The flags are checked, the port bound (a port in use is one line, exit 2) and only then the model loaded (a
pretrained one takes 10-30 s); a line ``serving NAME at URL/v1`` says when requests are accepted.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from bmoe.cli.errors import UserError
from bmoe.cli.finite import FiniteFloatRange
from bmoe.edge.attacks.expert_output import OUTPUT_ATTACKS
from bmoe.lm.pretrained.moefication import DEFAULT_EXPERTS

if TYPE_CHECKING:
    from bmoe.net.generation.local import LocalEdges
    from bmoe.run.generation import GenerationSession, GenerationSettings
    from bmoe.run.payments import PaymentTerms
    from bmoe.serve.app import ReceiptSink
    from bmoe.serve.scheduler import Scheduler
    from bmoe.serve.served_model import ServedModel


@click.command("serve")
@click.option("--model", "model_name", default=None, help="a pretrained model by name (smollm2-135m), fetched "
              "into the cache first if absent (`bmoe lm fetch`)")
@click.option("--model-dir", type=click.Path(path_type=Path), default=None,
              help="a `bmoe lm train` run directory: serve the model its ledger holds")
@click.option("--name", default=None, help="the model's id in the API (default: the pretrained name, or the run "
              "directory's name)")
@click.option("--experts", type=click.IntRange(min=1), default=None,
              help=f"a pretrained model's experts a layer (its FFN split into neuron slices, all active; default "
                   f"{DEFAULT_EXPERTS})")
@click.option("--host", default="127.0.0.1", show_default=True, help="the address to listen on")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True,
              help="the port to listen on (0: any free port, printed)")
@click.option("--max-batch", type=click.IntRange(1, 1024), default=16, show_default=True,
              help="requests decoded together in one step (continuous batching); more wait their turn")
@click.option("--threads", type=click.IntRange(min=1), default=None,
              help="torch threads for decoding (default: torch's; 1 on a loaded machine)")
@click.option("--verified", is_flag=True, help="generate through B-MoE: the experts on M edges, every chunk of "
              "expert calls re-computed by replicas and sealed on a ledger before its tokens are sent")
@click.option("--edges", type=click.IntRange(1, 1024), default=None, help="[--verified] edges M (default 5)")
@click.option("--replicas", default=None, metavar="R|all",
              help="[--verified] edges re-computing each checked call (default 1; all: every other edge)")
@click.option("--check-probability", type=FiniteFloatRange(0.0, 1.0, min_open=True), default=None,
              help="[--verified] a call is re-computed with this probability (default 1: every call)")
@click.option("--chunk-steps", type=click.IntRange(min=1), default=None,
              help="[--verified] decoding steps per verified chunk (default 16)")
@click.option("--ledger-dir", type=click.Path(path_type=Path), default=None,
              help="[--verified] a new directory for the chain, the store and receipts.jsonl (`bmoe replay` reads "
                   "it; default: in memory)")
@click.option("--attackers", type=click.IntRange(min=0), default=None,
              help="[--verified] the last N edges lie (a demonstration; default 0)")
@click.option("--attack", type=click.Choice(OUTPUT_ATTACKS), default=None, help="[--verified] how the attackers "
              "lie (default zero)")
@click.option("--seed", type=int, default=None, help="[--verified] the ledger's seed: keys, primaries, attacks")
@click.option("--quality", is_flag=True, help="score every response with the quality layer (a heuristic: the "
              "prompt's and completion's all-MiniLM-L6-v2 embeddings, three validators' median; docs/platform.md), "
              "in the receipt's verification.quality")
@click.option("--quality-threshold", type=FiniteFloatRange(-1.0, 1.0), default=None,
              help="[--quality] flag a response whose median score is below this (default: none, 'uncalibrated')")
@click.option("--payments", type=click.Path(path_type=Path), default=None,
              help="[--verified] charge for tokens: a JSON file of the requesters' deposits and the price rule "
                   "(docs/platform.md); every request names its paying account in 'user'")
@click.option("--quality-band", type=FiniteFloatRange(0.0, 2.0), default=None,
              help="[--quality-threshold] within this of the threshold the scorer is unsure: SmolLM2-135M-Instruct's "
                   "yes/no decides the flag (a heuristic; default: no judge model)")
@click.option("--quality-judge-bias", type=FiniteFloatRange(), default=None,
              help="[--quality-band] the judge model says yes when its yes logit beats its no logit by more than "
                   "this (default 0; SmolLM2-135M leans to no)")
@click.option("--edge-processes", is_flag=True, default=None,
              help="[--verified] run the M edges as processes on 127.0.0.1, each with its own key (`bmoe lm "
                   "generation-edge`), instead of in the server's process")
def serve_command(model_name: str | None, model_dir: Path | None, name: str | None, experts: int | None, host: str,
                  port: int, max_batch: int, threads: int | None, verified: bool, quality: bool,
                  quality_threshold: float | None, quality_band: float | None, quality_judge_bias: float | None,
                  **verification: Any) -> None:
    """Serve a language model behind the OpenAI HTTP API, every response with its receipt."""
    import torch

    from bmoe.cli.serve_quality import check_quality_flags, quality_amend, quality_judge
    from bmoe.lm.pretrained.catalogue import pretrained_source
    from bmoe.net.http.serve import bind, serve, url_of
    from bmoe.serve.app import build_app
    from bmoe.serve.scheduler import Scheduler
    from bmoe.serve.served_model import served_pretrained, served_run

    if (model_name is None) == (model_dir is None):
        raise UserError("give exactly one of --model NAME (a pretrained model) and --model-dir RUN_DIR")
    if model_name is not None:
        pretrained_source(model_name)  # an unknown name is one line before anything is bound or loaded
    elif experts is not None:
        raise UserError("--experts applies to a pretrained model (--model); a run's model has its own experts")
    elif model_dir is not None and not model_dir.is_dir():
        raise UserError(f"--model-dir {model_dir}: no such directory")
    settings = verified_settings(verified, max_batch, **verification)
    check_quality_flags(quality, quality_threshold, quality_band, quality_judge_bias)
    try:
        sock = bind(host, port)
    except OSError as err:
        raise UserError(f"cannot listen on {host}:{port}: {err.strerror or err}") from None
    try:
        if threads is not None:
            torch.set_num_threads(threads)
        judge = quality_judge(quality_threshold, quality_band, quality_judge_bias) if quality else None  # loaded first
        if model_name is not None:
            served = served_pretrained(model_name, experts or DEFAULT_EXPERTS, name)
        else:
            assert model_dir is not None
            served = served_run(model_dir, name)
    except BaseException:
        sock.close()
        raise
    url = url_of(sock)
    scheduler, on_receipt, mode = Scheduler(served.model, served.tokenizer.decode, max_batch=max_batch), None, ""
    edge_processes, session = None, None
    if settings is not None:
        try:
            if verification["edge_processes"]:
                edge_processes = start_edge_processes(served, settings, verification)
            scheduler, on_receipt, mode, session = verified_scheduler(served, settings, verification, edge_processes)
        except BaseException:
            if edge_processes is not None:
                edge_processes.stop()
            sock.close()
            raise

    def listening() -> None:
        click.echo(f"serving {served.name} at {url}/v1 (weights {served.identity['weights_cid']}){mode}")
        sys.stdout.flush()

    charges = settings is not None and settings.payments is not None  # every request names its payer in 'user'
    amend = quality_amend(judge, session) if judge is not None else None  # sealed on the ledger under --verified
    serve(build_app(served, scheduler, on_receipt, edge_processes.stop if edge_processes is not None else None,
                    amend, charges), sock, on_listening=listening)


def verified_settings(verified: bool, max_batch: int, **values: Any) -> GenerationSettings | None:
    """The verified server's settings from its flags (None without --verified); a flag without --verified, a bad
    --replicas or a used --ledger-dir is one line."""
    from bmoe.protocol.generation.policy import ALL
    from bmoe.run.generation import CHAIN_FILE, GenerationSettings

    given = sorted(f"--{key.replace('_', '-')}" for key, value in values.items() if value is not None)
    if not verified:
        if given:
            raise UserError(f"{', '.join(given)} need --verified")
        return None
    replicas_text = values["replicas"] or "1"
    if replicas_text == "all":
        replicas = ALL
    elif replicas_text.isdigit() and int(replicas_text) >= 1:
        replicas = int(replicas_text)
    else:
        raise UserError(f"--replicas must be an integer >= 1 or 'all', got {replicas_text!r}")
    edges = values["edges"] or 5
    if (values["attackers"] or 0) > edges:
        raise UserError(f"--attackers {values['attackers']} is more than the {edges} edges")
    ledger_dir = values["ledger_dir"]
    if ledger_dir is not None and (ledger_dir / CHAIN_FILE).exists():
        raise UserError(f"--ledger-dir {ledger_dir} already holds a ledger: give a new directory")
    return GenerationSettings(edges=edges, replicas=replicas, probability=values["check_probability"] or 1.0,
                              chunk_steps=values["chunk_steps"] or 16, seed=values["seed"] or 0, max_batch=max_batch,
                              payments=payment_terms(values["payments"]))


def payment_terms(path: Path | None) -> PaymentTerms | None:
    """The session's payments from ``--payments FILE`` (None without); a bad file is one line."""
    from bmoe.run.payments import PaymentTermsError, read_payment_terms

    if path is None:
        return None
    try:
        return read_payment_terms(path)
    except PaymentTermsError as err:
        raise UserError(f"--payments {err}") from None


def start_edge_processes(served: ServedModel, settings: GenerationSettings, values: dict[str, Any]) -> LocalEdges:
    """The M edges as processes on 127.0.0.1 (their keys, the model's objects and their logs under the ledger
    directory's ``edges/``, or a temporary directory), the last ``--attackers`` lying with ``--attack``."""
    import tempfile

    from bmoe.net.generation.local import LocalEdges, prepare_model
    from bmoe.run.generation import session_validator

    ledger_dir: Path | None = values["ledger_dir"]
    root = ledger_dir / "edges" if ledger_dir is not None else Path(tempfile.mkdtemp(prefix="bmoe-edges-"))
    root.mkdir(parents=True, exist_ok=True)
    store, model_file = prepare_model(root, served.model)
    count, kind = values["attackers"] or 0, values["attack"] or "zero"
    attacks = {index: ["--attack", kind, "--attack-seed", str(index)]
               for index in range(settings.edges - count, settings.edges)}
    validator = session_validator(served.model, settings)
    return LocalEdges(root, settings.edges, store, model_file, validator.address, attacks).start()


def verified_scheduler(served: ServedModel, settings: GenerationSettings, values: dict[str, Any],
                       processes: LocalEdges | None = None
                       ) -> tuple[Scheduler, ReceiptSink | None, str, GenerationSession]:
    """The genesis written, the edges built, a scheduler driving verified decoding; what to do with each receipt
    (append it with its prompt and completion texts to the ledger directory's receipts.jsonl: the explorer shows
    them), a note for the start-up line, and the session (quality verdicts are sealed on its ledger)."""
    from bmoe.run.generation import RECEIPTS_FILE, attackers, open_session
    from bmoe.serve.scheduler import Scheduler

    ledger_dir: Path | None = values["ledger_dir"]
    if processes is not None:
        from bmoe.run.generation import session_validator

        edges = processes.remote(session_validator(served.model, settings))
        session = open_session(served.model, settings, None, served.tokenizer.decode, ledger_dir, edges)
    else:
        attack_for = attackers(served.model, settings.edges, values["attackers"] or 0, values["attack"] or "zero",
                               settings.seed)
        session = open_session(served.model, settings, attack_for, served.tokenizer.decode, ledger_dir)
    if settings.payments is not None:
        from bmoe.run.payments import PaidDecoding

        scheduler = Scheduler(served.model, served.tokenizer.decode, engine=PaidDecoding(session))
    else:
        scheduler = Scheduler(served.model, served.tokenizer.decode, engine=session.decoding)
    on_receipt = None
    if ledger_dir is not None:
        receipts = ledger_dir / RECEIPTS_FILE

        def on_receipt(receipt: dict[str, Any], prompt: str, text: str) -> None:
            line = {"receipt": receipt, "prompt": prompt, "text": text}
            with receipts.open("a", encoding="utf-8") as out:
                out.write(json.dumps(line, sort_keys=True) + "\n")
    where = f", ledger in {ledger_dir}" if ledger_dir is not None else ", ledger in memory"
    where += ", edges as processes" if processes is not None else ""
    where += ", charging for tokens" if settings.payments is not None else ""
    return scheduler, on_receipt, (f"; verified: {settings.edges} edges, {settings.policy().name}, "
                                   f"{settings.chunk_steps} steps a chunk{where}"), session
