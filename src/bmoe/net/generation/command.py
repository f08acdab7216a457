"""``bmoe lm generation-edge``: run one edge of verified generation as a long-running HTTP process
(``python -m bmoe.net.generation``).

Owns the edge's command line: its key (its own, ``bmoe keygen``), the store and the model file naming the objects
it loads (once, at start), who may call it, any attack (tests and demos only), then serving until SIGTERM/SIGINT.
Bad flags or files print one line on stderr and exit 2, before anything is bound.

    python -m bmoe.net.generation --key edge-0.key --store run/store --model model.json \\
        --enrolled callers.json [--port 0] [--attack zero --attack-layer 1 --attack-expert 2]
"""

from __future__ import annotations

import sys
from collections.abc import Collection
from pathlib import Path

import click
import torch

from bmoe.edge.attacks.expert_output import OUTPUT_ATTACKS, ExpertOutputAttack, make_output_attack
from bmoe.ledger.errors import LedgerError
from bmoe.ledger.keys import Identity, load_identity
from bmoe.net.cli_support import run_command
from bmoe.net.enrolment import load_enrolment
from bmoe.net.generation.experts import ServedExperts, load_experts, read_model_file
from bmoe.net.generation.service import GenerationEdgeService
from bmoe.net.http.serve import bind, serve, url_of
from bmoe.net.node_setup import SetupError, parse_urls
from bmoe.net.store.client import HttpBlobStore
from bmoe.protocol.generation.edges import GenerationEdge, OutputAttack
from bmoe.storage import BlobStore, DirectoryStore

HONEST = "honest"


class TargetedAttack:
    """``attack`` on the calls of one layer and/or one expert only (None: any); every other call is honest."""

    def __init__(self, attack: ExpertOutputAttack, layer: int | None, expert: int | None) -> None:
        self.attack, self.layer, self.expert = attack, layer, expert

    def __call__(self, layer: int, expert: int, inputs: torch.Tensor, outputs: torch.Tensor) -> torch.Tensor:
        if (self.layer is not None and layer != self.layer) or (self.expert is not None and expert != self.expert):
            return outputs
        return self.attack(layer, expert, inputs, outputs)


def open_store(where: str, identity: Identity) -> BlobStore:
    """The store holding the model: storage nodes (``http://...``, comma-separated) or a directory store."""
    if where.startswith(("http://", "https://")):
        return HttpBlobStore(parse_urls(where, "--store"), identity)
    path = Path(where)
    if not path.is_dir():
        raise SetupError(f"--store {where}: not a directory (give a directory store or storage node URLs)")
    return DirectoryStore(path, create=False)


def make_attack(kind: str, experts: ServedExperts, layer: int | None, expert: int | None, seed: int,
                probability: float) -> OutputAttack | None:
    if kind == HONEST:
        if layer is not None or expert is not None:
            raise SetupError("--attack-layer and --attack-expert need --attack")
        return None
    config = experts.config
    if layer is not None and layer >= config.num_hidden_layers:
        raise SetupError(f"--attack-layer {layer}: the model has {config.num_hidden_layers} layers")
    if expert is not None and expert >= config.num_local_experts:
        raise SetupError(f"--attack-expert {expert}: the model has {config.num_local_experts} experts a layer")
    try:
        attack = make_output_attack(kind, experts.expert, seed=seed, probability=probability,
                                    num_experts=config.num_local_experts)
    except ValueError as exc:
        raise SetupError(f"--attack {kind}: {exc}") from None
    return TargetedAttack(attack, layer, expert)


def _callers(path: Path) -> Collection[str]:
    members = load_enrolment(path)
    if not members:
        raise SetupError(f"--enrolled {path} names nobody: no validator could call this edge")
    return set(members.values())


@click.command("generation-edge", help="Run one edge of verified generation: an HTTP process computing a language "
               "model's expert calls and signing commitments, holding no sequence state.")
@click.option("--host", default="127.0.0.1", show_default=True, help="address to listen on")
@click.option("--port", type=click.IntRange(0, 65535), default=0, show_default=True, help="0 picks a free port")
@click.option("--key", "key_file", type=click.Path(path_type=Path), required=True,
              help="this edge's own identity file (bmoe keygen)")
@click.option("--store", "store_at", required=True, help="the objects' store: a directory store or storage node URLs")
@click.option("--model", "model_file", type=click.Path(path_type=Path), required=True,
              help="JSON with the model's gate_cid and expert_cids (a genesis payload is one)")
@click.option("--enrolled", type=click.Path(path_type=Path), required=True,
              help='JSON {"name": address} of the validators allowed to call this edge')
@click.option("--threads", type=click.IntRange(min=1), default=1, show_default=True, help="torch threads")
@click.option("--attack", type=click.Choice([HONEST, *OUTPUT_ATTACKS]), default=HONEST, show_default=True,
              help="lie on expert calls (tests and demos only)")
@click.option("--attack-layer", type=click.IntRange(min=0), default=None, help="lie on this layer's calls only")
@click.option("--attack-expert", type=click.IntRange(min=0), default=None, help="lie on this expert's calls only")
@click.option("--attack-probability", type=click.FloatRange(0.0, 1.0), default=1.0, show_default=True,
              help="each targeted call is struck with this probability")
@click.option("--attack-seed", type=int, default=0, show_default=True, help="the attack's draws")
def generation_edge_command(host: str, port: int, key_file: Path, store_at: str, model_file: Path, enrolled: Path,
                            threads: int, attack: str, attack_layer: int | None, attack_expert: int | None,
                            attack_probability: float, attack_seed: int) -> None:
    try:
        identity = load_identity(key_file)
    except LedgerError as exc:
        raise SetupError(f"--key {key_file}: {exc}") from None
    callers = _callers(enrolled)
    gate_cid, expert_cids = read_model_file(model_file)
    torch.set_num_threads(threads)
    store = open_store(store_at, identity)
    try:
        experts = load_experts(store, gate_cid, expert_cids)
    finally:
        if isinstance(store, HttpBlobStore):
            store.close()
    lie = make_attack(attack, experts, attack_layer, attack_expert, attack_seed, attack_probability)
    service = GenerationEdgeService(GenerationEdge(identity, experts, lie), experts, callers, threads=threads)
    try:
        sock = bind(host, port)
    except OSError as exc:
        raise SetupError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    config = experts.config

    def announce() -> None:
        click.echo(f"bmoe generation-edge: listening on {url_of(sock)}, key {identity.address}, "
                   f"{config.num_hidden_layers} layers x {config.num_local_experts} experts, "
                   f"{len(callers)} caller(s), attack {attack}")
        sys.stdout.flush()

    serve(service.app(), sock, on_listening=announce)


def main(argv: list[str] | None = None) -> None:
    run_command(generation_edge_command, argv, "bmoe lm generation-edge")
