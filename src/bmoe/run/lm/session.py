"""A language model's run through B-MoE (or the traditional framework): the public Python API, in one process, and
the validator's side of a deployment (``bmoe lm cluster``: its store, edges and keys handed in, its rounds the
publisher's tasks, :meth:`LMSession.run_published`).

``LMSession`` wires a store, a ledger node, an :class:`~bmoe.protocol.lm.validator.LMValidator`, a publisher and the
edges (each with an :class:`~bmoe.edge.lm_runtime.LMExpertRuntime`) from one :class:`LMRunConfig`; its genesis
records the trusted part (``gate_cid``, the model's manifest in its metadata) and one object per (layer, expert).
``train`` runs rounds (``protocol/lm/round.py``) on seeded windows of the training text with nanoGPT's learning-rate
schedule, and every ``validation_every`` rounds measures the validation loss of the model the ledger holds (the trusted
object and the accepted experts by their CIDs, assembled by the validator: what anyone reading the ledger would run).

Blocks are sealed by proof of work, on Ethereum, or (``consensus`` ``pbft``) by PBFT among ``validators`` simulated
validators that each replay every proposed block (``protocol/lm/reexecute.py``), the current primary building each
task's block.

With a ``run_dir`` the store and chain live on disk (``store/``, ``chain.sqlite``), the settings in ``lm.json``, the
tokenizer in the store by CID, the curves in ``history.json``. Resuming a run directory is not supported yet: a
directory that holds a run is refused, so nothing sealed is overwritten.

Must not know: click, where the text came from (the caller hands in token ids and the tokenizer's bytes).
"""

from __future__ import annotations

import json
import math
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from bmoe.atomic_write import write_atomically
from bmoe.edge.lm_runtime import LMExpertRuntime, swiglu_spec
from bmoe.edge.runtime import ExpertRuntime
from bmoe.edge.worker import EdgeWorker
from bmoe.ledger.audit import evidence_objects
from bmoe.ledger.chainstore import ChainStore
from bmoe.ledger.node import LedgerNode, Sealer, Signer
from bmoe.ledger.transactions import Transaction
from bmoe.lm.config import LMConfig
from bmoe.lm.model import MoETransformer, build_model
from bmoe.lm.payloads import decode_batch
from bmoe.protocol.edges import EdgeGateway, InProcessEdges
from bmoe.protocol.lm.byzantine_validator import TamperingLMValidator
from bmoe.protocol.lm.reexecute import LMReexecutor
from bmoe.protocol.lm.round import LMRoundOutcome, run_lm_round, task_ids
from bmoe.protocol.lm.trusted import assemble, initial_objects
from bmoe.protocol.lm.validator import LMValidator
from bmoe.protocol.pbft_sealing import PbftCluster
from bmoe.protocol.quorum_watch import QuorumWatch
from bmoe.protocol.round import RoundParticipants
from bmoe.run import ethereum_ledger
from bmoe.run.config_checks import ConfigError
from bmoe.run.lm.batches import seeded_batch, validation_loss
from bmoe.run.lm.config import LM_CONFIG_FILE, LMRunConfig
from bmoe.run.setup import Identities, derive_identities, genesis_payload, in_process_profiles, make_edges, signing
from bmoe.storage import BlobStore, DirectoryStore, MemoryStore
from bmoe.verify.comparison import make_comparison
from bmoe.verify.framework import framework_of

CONFIG_FILE = LM_CONFIG_FILE
HISTORY_FILE = "history.json"
MODEL_FILE = "model.json"  # a traditional run's model (it keeps no chain): the CIDs it holds
STORE_DIR = "store"
CHAIN_FILE = "chain.sqlite"
HEAD_FILE = "head.json"
RoundCallback = Callable[[LMRoundOutcome, float], None]  # the round's outcome and its learning rate


@dataclass
class LMHistory:
    """What a run measured: per round the loss, lr and costs; per validation point the held-out loss."""

    rounds: list[dict[str, Any]] = field(default_factory=list)
    validation: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"rounds": self.rounds, "validation": self.validation}


@contextmanager
def open_run_dir(run_dir: Path) -> Iterator[None]:
    """Create ``run_dir`` for a new run (refused when it holds one, or is not a directory); when the enclosed
    set-up fails, remove what it created (the directory itself, if it did not exist)."""
    if run_dir.exists() and not run_dir.is_dir():
        raise ConfigError(f"{run_dir} is not a directory")
    existed = run_dir.exists()
    entries = set(run_dir.iterdir()) if existed else set()
    if any((run_dir / name).exists() for name in (CHAIN_FILE, CONFIG_FILE, STORE_DIR, HEAD_FILE)):
        raise ConfigError(f"{run_dir} already holds a run; resuming a language model's run is not supported yet: "
                          "choose a new --run-dir")
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ConfigError(f"cannot create {run_dir}: {err.strerror or err}") from None
    try:
        yield
    except BaseException:
        if not existed:
            shutil.rmtree(run_dir, ignore_errors=True)
        else:
            for path in set(run_dir.iterdir()) - entries:
                shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)
        raise


class LMSession:
    """One language model's run. ``train_ids``/``validation_ids``: the corpus as 1-D int64 token ids;
    ``tokenizer``: the tokenizer's saved bytes (stored by CID, named in the model's manifest)."""

    def __init__(self, config: LMRunConfig, tokenizer: bytes, vocab_size: int, train_ids: torch.Tensor | None,
                 validation_ids: torch.Tensor | None, run_dir: Path | None = None,
                 initial: MoETransformer | None = None, keep_objects: bool = True, *,
                 store: BlobStore | None = None, gateway: EdgeGateway | None = None,
                 identities: Identities | None = None) -> None:
        """A deployment's validator (``bmoe.net.validator``) passes its ``store`` (the storage nodes), its
        ``gateway`` (edges over the network: no edges are built here) and the enrolled ``identities`` (holding its
        own key), and no text: its rounds are the publisher's (:meth:`run_published`)."""
        self.config = config
        run = config.run
        if gateway is None:
            in_process_profiles(run)
        self.model_config: LMConfig = config.lm.model_config(vocab_size)
        context = self.model_config.max_position_embeddings
        for name, ids in (("training", train_ids), ("validation", validation_ids)):
            if ids is not None and (ids.dim() != 1 or ids.numel() <= context):
                raise ConfigError(f"the {name} text has {ids.numel()} tokens: it needs more than the context "
                                  f"({context})")
        self.train_ids, self.validation_ids = train_ids, validation_ids
        self.run_dir = run_dir
        if run_dir is not None and any((run_dir / name).exists() for name in (CHAIN_FILE, CONFIG_FILE)):
            raise ConfigError(f"{run_dir} already holds a run; resuming a language model's run is not supported "
                              "yet: choose a new --run-dir")
        torch.set_num_threads(run.threads)
        # objects durable before the block naming them (a flush per block, not an fsync per object)
        self.store: BlobStore = (store if store is not None else DirectoryStore(run_dir / STORE_DIR, batch=True)
                                 if run_dir is not None else MemoryStore())
        keeps = framework_of(run.framework).keeps_ledger
        chain = ChainStore(run_dir / CHAIN_FILE, anchor=run_dir / HEAD_FILE) if run_dir is not None and keeps else None
        self.ids = identities if identities is not None else derive_identities(run)
        sealer: Sealer | None = None
        self.pbft: PbftCluster | None = None
        if run.consensus == "ethereum":  # every block sealed through the run's contract (docs/ethereum.md)
            sealer = ethereum_ledger.contract_sealer(self.store, lambda: self.node.view(), None)
        elif run.consensus == "pbft" and keeps:  # the validators vote, each replaying the proposed block
            self.pbft = PbftCluster(self.ids.validators, run.byzantine_validators, run.validator_attack,
                                    lambda name: LMReexecutor(self.store, config.lm.lr), run.seed, run.message_delay,
                                    run.difficulty)
            sealer = self.pbft.seal
        self.node = LedgerNode(signing(self.ids.validator), run.difficulty, chain, seals=keeps, sealer=sealer)
        if isinstance(self.store, DirectoryStore):
            self.node.before_persist = self.store.flush
        if initial is not None and initial.config != self.model_config:
            raise ConfigError(f"the initial model's shape {initial.config} is not the settings' {self.model_config}")
        self.tokenizer_cid = self.store.put(tokenizer)
        self._write_genesis(initial, sealer)
        node, ids = self.node, self.ids
        self.publisher = Signer(ids.publisher, node.next_nonce(ids.publisher.address))
        validators = self._validators()
        self.validator = validators[ids.validator.name]
        self.edges: list[EdgeWorker] = []
        self.runtimes: list[ExpertRuntime] = []
        if gateway is None:
            spec = swiglu_spec(self.model_config.hidden_size, self.model_config.intermediate_size)
            self.edges, self.runtimes = make_edges(run, ids, node, self.store, spec, None,
                                                   lambda store, s, profile: LMExpertRuntime(store, s, profile))
            gateway = InProcessEdges(self.edges, self.runtimes, self.store, self.model_config.num_slots,
                                     check_honest=not make_comparison(run.comparison_spec()).records_groups)
        self.participants = RoundParticipants(node, self.store, self.publisher, self.validator, gateway,
                                              self.model_config.num_slots)
        if self.pbft is not None:  # the primary of the current view builds each task's block
            self.participants.validators = validators
            self.participants.primary = self.pbft.primary
            self.participants.refusals = self.pbft.refusals
        self.history = LMHistory()
        self.quorum = QuorumWatch(run.stall_after)  # tasks in a row without quorum (protocol/quorum_watch.py)
        self.step = 0
        self.keep_objects = keep_objects
        self._started = time.perf_counter()  # the wall clock's start of training, for the validation points
        self.evidence: set[str] = set()  # objects behind misbehaviour records: kept when the store is pruned
        if run_dir is not None:
            write_atomically(run_dir / CONFIG_FILE, _json_bytes(config.to_dict()))

    def _write_genesis(self, initial: MoETransformer | None, sealer: Any) -> None:
        run, ids = self.config.run, self.ids
        model = initial if initial is not None else build_model(self.model_config, run.seed)
        trusted, experts = initial_objects(model, self.model_config, self.tokenizer_cid)
        gate_cid = self.store.put(trusted)
        expert_cids = [self.store.put(data) for data in experts]
        spec = swiglu_spec(self.model_config.hidden_size, self.model_config.intermediate_size)
        payload = genesis_payload(run, ids, spec, gate_cid, expert_cids)
        payload["config_hash"] = self.config.hash()
        if run.consensus == "ethereum":
            payload["consensus"] = ethereum_ledger.deploying(sealer, run, ids)(payload)
        validator = Signer(signing(ids.validator), self.node.next_nonce(ids.validator.address))
        self.node.submit(validator.sign("genesis", payload))
        self.store.sync()  # the genesis's objects durable before its block is sealed
        self.node.seal(timestamp=0)

    def _validators(self) -> dict[str, LMValidator]:
        """Every validator's signer on the round's work, by name (one under PoW and Ethereum); under PBFT the first
        ``byzantine_validators`` tamper with the aggregates of the blocks they build when ``validator_attack`` is
        ``tamper``. The round computes on validator-0's (``self.validator``); a proposer signs what it records."""
        run, node = self.config.run, self.node
        validators: dict[str, LMValidator] = {}
        for index, identity in enumerate(self.ids.validators if self.pbft is not None else self.ids.validators[:1]):
            tampers = index < run.byzantine_validators and run.validator_attack == "tamper"
            kind = TamperingLMValidator if tampers else LMValidator
            validators[identity.name] = kind(Signer(identity, node.next_nonce(identity.address)), node, self.store,
                                             self.model_config)
        return validators

    def lr(self, step: int) -> float:
        return self.config.lm.lr(step)

    def batch(self, ids: torch.Tensor, step: int, stream: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Seeded random windows of ``ids`` (B, T) and their next tokens: the seed, the stream (0: training,
        1: validation) and the step fix them."""
        return seeded_batch(self.config.run.seed, self.config.lm, ids, self.model_config.max_position_embeddings,
                            step, stream)

    def train(self, steps: int | None = None, on_round: RoundCallback | None = None) -> LMHistory:
        """Run training rounds up to ``steps`` (by default the configured steps), validating every
        ``validation_every`` rounds and after the last."""
        s: Any = self.config.lm
        total = s.steps if steps is None else steps
        self._started = time.perf_counter()
        try:
            self._train_until(total, on_round)
        finally:
            self._save_history()  # what was sealed is recorded, also when a round fails
        return self.history

    def _train_until(self, total: int, on_round: RoundCallback | None) -> None:
        s: Any = self.config.lm
        if self.train_ids is None:
            raise ConfigError("this session has no training text: a deployment's rounds are its publisher's")
        while self.step < total:
            x, y = self.batch(self.train_ids, self.step, 0)
            outcome = self._round(self.step, x, y, None)
            if on_round is not None:
                on_round(outcome, self.lr(outcome.round))
            if self.step % s.validation_every == 0 or self.step == total:
                self.validate()

    def _round(self, step: int, x: torch.Tensor, y: torch.Tensor, tasks: list[Transaction] | None) -> LMRoundOutcome:
        """Training round ``step`` on (x, y), under the schedule's learning rate; recorded in the history."""
        lr = self.lr(step)
        outcome = run_lm_round(self.participants, self.validator, step, x, y, True, lr, tasks=tasks,
                               on_sealed=None if self.keep_objects else self._collect_evidence)
        self.quorum.observe(self.node.view())
        self._prune()
        self.history.rounds.append({"step": step, "loss": outcome.loss, "lr": lr, "calls": outcome.calls,
                                    "accepted": outcome.accepted, "misbehaviour": outcome.misbehaviour,
                                    "edge_seconds": outcome.edge_seconds,
                                    "edge_total_seconds": outcome.edge_total_seconds,
                                    "bytes": outcome.traffic.total, "round_seconds": outcome.times.total()})
        self.step = step + 1
        return outcome

    def run_published(self, tasks: list[Transaction]) -> LMRoundOutcome:
        """A training round a publisher signed and stored elsewhere (a deployment's validator): ``tasks`` are the
        round's, in :func:`~bmoe.protocol.lm.round.task_ids` order, over one batch."""
        first = tasks[0].payload
        expected = task_ids(int(first["round"]), self.model_config.num_hidden_layers, True)
        if [tx.payload.get("task_id") for tx in tasks] != expected or any(
                tx.payload.get("data_cid") != first["data_cid"] or tx.payload.get("round") != first["round"]
                for tx in tasks):
            raise ValueError(f"a language model's round is the tasks {', '.join(expected)} over one batch")
        x, y = decode_batch(self.store.get(first["data_cid"]), self.model_config.vocab_size)
        if y is None:
            raise ValueError(f"task data {first['data_cid']} has no targets: a training round needs them")
        return self._round(int(first["round"]), x, y, tasks)

    def _collect_evidence(self) -> None:
        state = self.node.view()
        for task in state.tasks.values():  # the block just sealed
            self.evidence.update(evidence_objects(task, state.comparison.records_groups))

    def _prune(self) -> None:
        """Without ``keep_objects`` the store keeps only what the state names (the trusted part, the experts, the
        tokenizer) and the evidence behind every misbehaviour record, as a pruned node does: a long run's expert
        objects (weights and moments) would otherwise fill the disk, ~38 MB a round for the default model. Such a
        run's history can no longer be audited against its objects."""
        if self.keep_objects:
            return
        state = self.node.view()
        keep = {state.gate_cid, *state.expert_cids, self.tokenizer_cid, *self.evidence}
        for cid in list(self.store.cids()):
            if cid not in keep:
                self.store.delete(cid)

    def ledger_model(self) -> MoETransformer:
        """The model the ledger holds now: its trusted object and accepted experts, by their CIDs."""
        state = self.node.view()
        return assemble(self.model_config, self.store.get(state.gate_cid),
                        [self.store.get(cid) for cid in state.expert_cids])

    def validate(self) -> float:
        """The ledger's model's mean cross-entropy (nats per token) on seeded held-out batches."""
        s: Any = self.config.lm
        if self.validation_ids is None:
            raise ConfigError("this session has no validation text")
        loss = validation_loss(self.ledger_model(), self.config.run.seed, s, self.validation_ids)
        self.history.validation.append({"step": self.step, "loss": loss, "bits": loss / math.log(2),
                                        "wall_seconds": time.perf_counter() - self._started})
        self._save_history()
        return loss

    def _save_history(self) -> None:
        if self.run_dir is not None:
            write_atomically(self.run_dir / HISTORY_FILE, _json_bytes(self.history.to_dict()))
            if not framework_of(self.config.run.framework).keeps_ledger:
                state = self.node.view()
                write_atomically(self.run_dir / MODEL_FILE, _json_bytes({"gate_cid": state.gate_cid,
                                                                         "expert_cids": state.expert_cids}))

    def head_hash(self) -> str:
        return self.node.view().head

    def close(self) -> None:
        if isinstance(self.store, DirectoryStore):
            self.store.flush()
        if self.node.chain is not None:
            self.node.chain.close()


def _json_bytes(value: Any) -> bytes:
    return (json.dumps(value, indent=1, sort_keys=True) + "\n").encode()
