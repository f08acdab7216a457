"""``bmoe serve``: a language model behind the OpenAI HTTP API (docs/serving.md).

The flags are checked, the port bound (a port in use is one line, exit 2) and only then the model loaded (a
pretrained one takes 10-30 s); a line ``serving NAME at URL/v1`` says when requests are accepted.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from bmoe.cli.errors import UserError
from bmoe.lm.pretrained.moefication import DEFAULT_EXPERTS


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
def serve_command(model_name: str | None, model_dir: Path | None, name: str | None, experts: int | None, host: str,
                  port: int, max_batch: int, threads: int | None) -> None:
    """Serve a language model behind the OpenAI HTTP API, every response with its receipt."""
    import torch

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
    try:
        sock = bind(host, port)
    except OSError as err:
        raise UserError(f"cannot listen on {host}:{port}: {err.strerror or err}") from None
    try:
        if threads is not None:
            torch.set_num_threads(threads)
        if model_name is not None:
            served = served_pretrained(model_name, experts or DEFAULT_EXPERTS, name)
        else:
            assert model_dir is not None
            served = served_run(model_dir, name)
    except BaseException:
        sock.close()
        raise
    url = url_of(sock)

    def listening() -> None:
        click.echo(f"serving {served.name} at {url}/v1 (weights {served.identity['weights_cid']})")
        sys.stdout.flush()

    serve(build_app(served, Scheduler(served.model, served.tokenizer.decode, max_batch=max_batch)), sock,
          on_listening=listening)
