"""The publisher of a language model's deployment: each round's batch stored, its 2L tasks signed and posted, the
validation loss of the model the ledger holds measured as the run says (``bmoe lm train --cluster D``).

The rounds are an in-process run's (``LMSession.train``): the same seeded batches (``run/lm/batches.py``), the same
tasks (``sign_lm_tasks``), posted back to back to the validator, which runs them as one round; the publisher waits
for the round's last task (``train-RRRRRR-b0``) to be sealed. It continues from the ledger: its first round is the
validator's ``next_round``, its first nonce the sealed one plus 1 (``GET /head``). Every ``validation_every``
rounds and after the last it reads the head's trusted object and experts from the storage nodes, by their CIDs,
and measures the held-out loss, as anyone reading the ledger could.

Must not know: click, how the cluster was started.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bmoe.ledger.keys import Identity
from bmoe.ledger.node import Signer
from bmoe.net.publish.command import DEFAULT_TASK_TIMEOUT_S, Validators, carried
from bmoe.net.store.client import HttpBlobStore
from bmoe.protocol.lm.round import sign_lm_tasks
from bmoe.protocol.lm.trusted import assemble
from bmoe.protocol.quorum_watch import QuorumStalled
from bmoe.run.lm.batches import TRAINING, seeded_batch, validation_loss
from bmoe.run.lm.config import LMRunConfig
from bmoe.run.lm.text import LMText
from bmoe.storage import MemoryStore

LMRoundCallback = Callable[[dict[str, list[dict[str, Any]]]], None]  # told the history so far after each round


@dataclass(frozen=True)
class LMDeployment:
    """Where a language model's deployment is reached and what it runs."""

    validator_url: str
    validator_address: str
    store_urls: list[str]
    publisher: Identity
    config: LMRunConfig


def publish_lm_training(deployment: LMDeployment, text: LMText, rounds: int | None = None, *,
                        on_round: LMRoundCallback | None = None,
                        timeout: float = DEFAULT_TASK_TIMEOUT_S) -> dict[str, list[dict[str, Any]]]:
    """Publish ``rounds`` more training rounds (by default up to the settings' ``steps``) and wait for each to be
    sealed; the history as an in-process run records it: per round the loss, lr, the misbehaviour records, the
    round's latency and the validator's times; per validation point the held-out loss. ``on_round`` is told after
    every round, with the history so far."""
    config, settings = deployment.config, deployment.config.lm
    s: Any = settings
    model_config = settings.model_config(text.tokenizer.vocab_size)
    layers, context, seed = model_config.num_hidden_layers, model_config.max_position_embeddings, config.run.seed
    history: dict[str, list[dict[str, Any]]] = {"rounds": [], "validation": []}
    started = time.perf_counter()
    store = HttpBlobStore(deployment.store_urls, deployment.publisher)  # the model, read for its validation loss
    scratch = MemoryStore()
    try:
        with Validators(deployment.validator_url, deployment.publisher, config.run,
                        [deployment.validator_address]) as validators:
            head = validators.head()
            start = int(head["next_round"])  # past a round cut short too
            end = start + rounds if rounds is not None else max(start, s.steps)
            signer = Signer(deployment.publisher, int(head["nonces"].get(deployment.publisher.address, -1)) + 1)
            for step in range(start, end):
                x, y = seeded_batch(seed, settings, text.train_ids, context, step, TRAINING)
                tasks = sign_lm_tasks(signer, scratch, step, x, y, layers, True)
                posted = time.perf_counter()
                validators.submit(tasks[0], carried(scratch, tasks[0]))  # the round's batch travels with its first task
                for tx in tasks[1:]:
                    validators.submit(tx)
                record = validators.wait_sealed(str(tasks[-1].payload["task_id"]), timeout)
                latency = time.perf_counter() - posted
                records = [validators.wait_sealed(str(tx.payload["task_id"]), timeout) for tx in tasks[:-1]]
                times = record.get("times") or {}
                row = {"step": step, "loss": record.get("loss"), "lr": settings.lr(step),
                       "height": record.get("height"),
                       "misbehaviour": sum(len(r.get("misbehaviour") or []) for r in [*records, record]),
                       "accepted": sum(int(r.get("accepted") or 0) for r in [*records, record]),
                       "round_seconds": latency,  # the publisher's: posting the round's tasks to the last sealed
                       "edge_seconds": times.get("edges"), "edge_total_seconds": times.get("edges_total"),
                       "bytes": times.get("bytes"), "validator_times": times}
                history["rounds"].append(row)
                stall = (record.get("quorum") or {}).get("stall")
                if stall:
                    raise QuorumStalled(stall)
                if (step + 1) % s.validation_every == 0 or step + 1 == end:
                    head = validators.head()
                    model = assemble(model_config, store.get(head["gate_cid"]),
                                     [store.get(cid) for cid in head["expert_cids"]])
                    loss = validation_loss(model, seed, settings, text.validation_ids)
                    history["validation"].append({"step": step + 1, "loss": loss, "bits": loss / math.log(2),
                                                  "wall_seconds": time.perf_counter() - started,
                                                  "head_hash": head.get("head_hash")})
                if on_round is not None:
                    on_round(history)
    finally:
        store.close()
    return history
