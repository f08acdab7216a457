"""A language model's run as its pages show it, derived from the replayed chain and the trusted object.

Owns reading the LM round's conventions back (``protocol/lm/round.py``): a round is one ledger task per layer and
direction (``<kind>-RRRRRR-fL`` forward, of kind ``infer``; ``train-RRRRRR-bL`` backward, of kind ``train``), a
(layer l, expert j) is the ledger's expert ``l * N + j`` (a slot), each backward task's gate update records the
round's loss. From these: the model's manifest (the trusted object's metadata, named by the chain's ``gate_cid``),
the tokens each layer routed to each of its experts in each round (the forward tasks' activation counts), the
training loss per round. Must not know HTML, HTTP or files.
"""

from __future__ import annotations

from dataclasses import dataclass

from bmoe.explorer.model import TaskView
from bmoe.lm.config import LMConfig
from bmoe.moe.payloads import PayloadError
from bmoe.protocol.lm.round import lm_task
from bmoe.protocol.lm.trusted import decode_trusted
from bmoe.storage import BlobStore, StorageError


@dataclass(frozen=True)
class Manifest:
    """What the trusted object says the model is: its config (Mixtral's fields) and its tokenizer's CID."""

    trusted_cid: str
    config: LMConfig
    tokenizer_cid: str


@dataclass(frozen=True)
class RoutedTask:
    """One forward task of one layer: the tokens it routed to each of the layer's experts."""

    task: TaskView
    kind: str  # the round's: train | infer
    layer: int
    counts: tuple[int, ...]  # (N,) tokens routed to expert j of the layer

    @property
    def tokens(self) -> int:
        return self.task.samples


@dataclass(frozen=True)
class LayerRouting:
    """A layer's routing over the chain: each forward task's counts, and their sum per expert."""

    layer: int
    tasks: tuple[RoutedTask, ...]
    totals: tuple[int, ...]  # (N,)


_manifests: dict[str, Manifest] = {}  # by CID: an object's bytes never change, so neither does what it says


def read_manifest(store: BlobStore, trusted_cid: str) -> Manifest:
    """The manifest in the trusted object ``trusted_cid`` (read once: content-addressed); PayloadError when the
    object is not a language model's trusted part, StorageError when the store cannot give it."""
    if trusted_cid not in _manifests:
        _, config, tokenizer_cid = decode_trusted(store.get(trusted_cid))
        _manifests[trusted_cid] = Manifest(trusted_cid, config, tokenizer_cid)
    return _manifests[trusted_cid]


MANIFEST_ERRORS = (PayloadError, StorageError)


def layer_routing(tasks: list[TaskView], config: LMConfig) -> list[LayerRouting]:
    """Every layer's forward tasks in chain order, each with its experts' counts (slots ``l * N .. l * N + N-1``)."""
    experts = config.num_local_experts
    by_layer: list[list[RoutedTask]] = [[] for _ in range(config.num_hidden_layers)]
    for task in tasks:
        parsed = lm_task(task.task_id)
        if parsed is None or parsed[2] != "f" or parsed[3] >= config.num_hidden_layers or not task.counts:
            continue
        kind, _, _, layer = parsed
        by_layer[layer].append(RoutedTask(task, kind, layer, task.counts[layer * experts:(layer + 1) * experts]))
    return [LayerRouting(layer, tuple(routed), tuple(sum(r.counts[j] for r in routed) for j in range(experts)))
            for layer, routed in enumerate(by_layer)]


def slot_activations(routing: list[LayerRouting], experts: int) -> dict[int, list[tuple[int, str, float]]]:
    """Each slot's activation ratio per round (routed tokens / tokens) from its own layer's forward tasks, as
    (round, the round's kind, ratio): what :class:`~bmoe.explorer.model.ExpertHistory` keeps of a classifier's."""
    return {layer.layer * experts + j: [(r.task.round, r.kind, r.counts[j] / r.tokens) for r in layer.tasks]
            for layer in routing for j in range(experts)}


def round_losses(tasks: list[TaskView]) -> list[tuple[int, float]]:
    """The training loss of each round as its gate updates record it (every backward task records the same)."""
    losses: dict[int, float] = {}
    for task in tasks:
        if task.loss is not None:
            losses.setdefault(task.round, task.loss)
    return sorted(losses.items())


def slot_label(config: LMConfig, slot: int) -> str:
    layer, expert = config.layer_expert(slot)
    return f"layer {layer}, expert {expert}"
