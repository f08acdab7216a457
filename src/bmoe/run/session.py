"""A run of B-MoE or the traditional framework: the public Python API.

``Session`` wires a dataset, a store, a ledger node, a validator, a publisher and M edges from one
:class:`RunConfig`, then runs training and inference rounds. With a ``run_dir`` the store and the
chain live on disk (``store/``, ``chain.sqlite``) and a B-MoE run resumes from its last sealed
block; without one, everything is in memory.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from bmoe.data import Dataset, task_batches
from bmoe.edge.profiles import get_profile
from bmoe.ledger.audit import evidence_objects
from bmoe.ledger.blocks import Block
from bmoe.ledger.chainstore import ChainStore
from bmoe.ledger.errors import LedgerError
from bmoe.ledger.keys import Identity
from bmoe.ledger.node import LedgerNode, Sealer, Signer, founding_block_mined
from bmoe.ledger.transactions import Transaction
from bmoe.moe.experts import ExpertFactory, ExpertSpec, build_expert
from bmoe.moe.gate import LinearGate
from bmoe.moe.model import MoE
from bmoe.moe.payloads import check_task_fits, decode_task
from bmoe.protocol.byzantine_validator import TamperingValidator
from bmoe.protocol.edges import EdgeGateway, InProcessEdges
from bmoe.protocol.pbft_sealing import PbftCluster
from bmoe.protocol.quorum_watch import QuorumWatch
from bmoe.protocol.reexecute import Reexecutor
from bmoe.protocol.round import RoundOutcome, RoundParticipants, run_round
from bmoe.protocol.validator import Validator
from bmoe.run import ethereum_ledger
from bmoe.run.config import ConfigError, RunConfig
from bmoe.run.fit import check_fits, load_run_dataset
from bmoe.run.run_dir import (
    CHAIN_FILE,
    CONFIG_FILE,
    HEAD_FILE,
    STORE_DIR,
    Creation,
    check_layout,
    check_recorded,
    write_config,
)
from bmoe.run.setup import (
    Identities,
    behaviours,
    derive_identities,
    distinct,
    edge_runtimes,
    genesis_payload,
    in_process_profiles,
    initial_weights,
    make_edges,
    signing,
    write_genesis,
)
from bmoe.storage import (
    BlobStore,
    DirectoryStore,
    MemoryStore,
    cid_of,
    deserialize_tensors,
    serialize_tensors,
)
from bmoe.verify.comparison import make_comparison
from bmoe.verify.framework import framework_of

RoundCallback = Callable[[RoundOutcome], None]
__all__ = ["CHAIN_FILE", "CONFIG_FILE", "STORE_DIR", "RoundCallback", "Session"]


class Session:
    """One run. ``dataset`` defaults to ``load_dataset(config.dataset, ...)``; ``expert_factory``
    makes any ``nn.Module`` an expert (input (B, *input_shape) -> logits (B, num_classes)).

    ``gateway``: how rounds reach the edges; by default the edges live in this process
    (:class:`InProcessEdges`), a deployment passes a network gateway instead.

    ``keep_objects=False`` runs like a pruned node: after each round the store keeps only what the
    state names (the gate and the experts) and the evidence behind every misbehaviour record (pinned as
    long as the accusation it proves), so long experiments do not fill the disk; such a run's history
    can no longer be audited against its objects. ``keep_evidence=False`` prunes the evidence too: for
    experiments that measure and never audit (an attacker that dissents in every round would otherwise
    pin an updated expert per round: gigabytes over the paper's 1500 rounds).

    ``sealer``: how this validator's blocks after block 0 (mined, under every engine) are sealed when the
    engine runs outside this process (a PBFT validator process passes its replica's, and names the round's
    primary in ``participants``); it is given to the ledger node as it is built, no simulated PBFT cluster
    is wired, and a PBFT run directory may be resumed. None: the session wires the engine its config names
    (PoW mining, a simulated PBFT cluster, the run's Ethereum contract).

    ``identities``: the participants the genesis enrols (a deployment's validator: the enrolled public keys
    and its own key, :func:`~bmoe.run.setup.enrolled_identities`); by default every key is derived
    from the seed (a reproducible simulation). ``genesis``: for a new chain, block 0 as another validator
    wrote it (a PBFT validator that does not hold validator-0's key); checked like a resumed chain's."""

    def __init__(self, config: RunConfig, dataset: Dataset | None = None, run_dir: Path | None = None,
                 expert_factory: ExpertFactory | None = None, store: BlobStore | None = None,
                 keep_objects: bool = True, gateway: EdgeGateway | None = None,
                 sealer: Sealer | None = None, keep_evidence: bool = True,
                 identities: Identities | None = None, genesis: Block | None = None) -> None:
        self.config = config.validate()
        self.dataset = dataset if dataset is not None else load_run_dataset(config)
        check_fits(config, self.dataset, custom_experts=expert_factory is not None)
        if gateway is None:
            in_process_profiles(config)  # a profile only an edge process can honour is refused before any write
        torch.set_num_threads(config.threads)
        preset = config.expert if expert_factory is None else "custom"
        self.spec = ExpertSpec(preset, tuple(self.dataset.input_shape), self.dataset.num_classes, config.hidden)
        self.factory = expert_factory
        self.run_dir = run_dir
        self.ids = identities if identities is not None else derive_identities(config)
        self.own = _own_validator_key(self.ids)
        creation = None
        if run_dir is not None:  # every check before the first write
            check_layout(run_dir)
            creation = Creation(run_dir)
        chain: ChainStore | None = None
        try:
            if run_dir is not None:
                store = store if store is not None else DirectoryStore(run_dir / STORE_DIR, batch=True)
                if framework_of(config.framework).keeps_ledger or (run_dir / CHAIN_FILE).exists():
                    chain = ChainStore(run_dir / CHAIN_FILE, anchor=run_dir / HEAD_FILE)
                check_recorded(run_dir, config, _recorded_hash(chain))
                if not framework_of(config.framework).keeps_ledger and chain is not None:
                    chain.close()  # checked: a traditional run keeps no chain
                    chain = None
            self.store = store if store is not None else MemoryStore()
            self.pbft: PbftCluster | None = None
            durable = self.store.flush if isinstance(self.store, DirectoryStore) and self.store.batch else None
            if sealer is not None:
                sealer = founding_block_mined(sealer, config.difficulty)
            elif config.consensus == "pbft" and framework_of(config.framework).keeps_ledger:
                self.pbft = self._pbft_cluster()
                sealer = self.pbft.seal
            elif config.consensus == "ethereum":
                sealer = ethereum_ledger.contract_sealer(self.store, lambda: self.node.view(), durable)
            self._open_ledger(chain, sealer, durable, genesis)
            if run_dir is not None:  # only once the chain is known to match these settings
                write_config(run_dir, config)
        except BaseException:
            if chain is not None:
                chain.close()
            if creation is not None:
                creation.undo()
            raise
        node, ids = self.node, self.ids
        validator_signer = Signer(ids.validator, node.next_nonce(ids.validator.address))
        self.publisher = Signer(ids.publisher, node.next_nonce(ids.publisher.address))
        validators = self._validators(validator_signer)
        self.validator = validators[ids.validator.name]
        self.edges, self.runtimes = [], []
        if gateway is None:
            self.edges, self.runtimes = make_edges(config, ids, node, self.store, self.spec, expert_factory)
            # the simulator's oracle: honest edges splitting is an error where the comparison needs equal bytes
            gateway = InProcessEdges(self.edges, self.runtimes, self.store, config.num_experts,
                                     check_honest=not make_comparison(config.comparison_spec()).records_groups)
        self.participants = RoundParticipants(node, self.store, self.publisher, self.validator, gateway,
                                              config.num_experts, validators=validators)
        if self.pbft is not None:
            self.participants.primary = self.pbft.primary
            self.participants.refusals = self.pbft.refusals
        self.history: list[dict[str, Any]] = []
        self.keep_objects, self.keep_evidence = keep_objects, keep_evidence
        self.evidence: set[str] = set()  # committed results that misbehaviour records accuse: never pruned
        self.quorum = QuorumWatch(config.stall_after)  # tasks in a row without quorum (protocol/quorum_watch)

    def _open_ledger(self, chain: ChainStore | None, sealer: Sealer | None,
                     durable: Callable[[], object] | None, founding: Block | None = None) -> None:
        """Reopen the chain (after checking it was made with these settings) or start one with its genesis.
        ``founding``: another validator's block 0 to start a new chain from (checked as a reopened one)."""
        config, ids = self.config, self.ids
        if founding is not None and chain is not None and chain.height() < 0:
            chain.append(founding)
        if chain is not None and chain.height() >= 0:
            self.node = LedgerNode.open(self.own, config.difficulty, chain, sealer=sealer)
            self._check_genesis(self.node)
            if self.pbft is not None:
                if self.node.view().height > 0:
                    raise ConfigError("resuming a PBFT run is not supported yet; start a new --run-dir")
                self.pbft.adopt_chain(list(chain.iter_blocks()))
        else:
            self.node = LedgerNode(self.own, config.difficulty, chain,
                                   seals=framework_of(config.framework).keeps_ledger, sealer=sealer)
        self.node.before_persist = durable  # objects are durable before the block naming them
        if self.node.view().height >= 0:
            if config.consensus == "ethereum":
                ethereum_ledger.reconnecting(self.node, sealer, self.store, config, ids)
            return
        validator = Signer(signing(ids.validator), self.node.next_nonce(ids.validator.address))
        deploy = ethereum_ledger.deploying(sealer, config, ids) if config.consensus == "ethereum" else None
        write_genesis(self.node, self.store, config, ids, self.spec, self.dataset.input_dim, self.factory, validator,
                      deploy)

    def _validators(self, first: Signer) -> dict[str, Validator]:
        """Every validator's tensor work; under PBFT the first ``byzantine_validators`` may tamper."""
        config = self.config
        validators = {}
        for index, identity in enumerate(self.ids.validators):
            signer = first if index == 0 else Signer(identity, self.node.next_nonce(identity.address))
            byzantine = index < config.byzantine_validators  # the first: view 0's primary is one
            kind = TamperingValidator if byzantine and config.validator_attack == "tamper" else Validator
            validators[identity.name] = kind(signer, self.node, self.store, self.dataset.input_dim,
                                             config.num_experts, config.top_k, self.dataset.num_classes,
                                             get_profile(config.validator_profiles[index]))
        return validators

    def _pbft_cluster(self) -> PbftCluster:
        """The simulated PBFT validators, each re-executing on its own numerics; they seal every block."""
        config = self.config
        profiles = {v.name: name for v, name in zip(self.ids.validators, config.validator_profiles, strict=True)}
        return PbftCluster(self.ids.validators, config.byzantine_validators, config.validator_attack,
                           lambda name: Reexecutor(self.store, self.dataset.input_dim, self.dataset.num_classes,
                                                   get_profile(profiles[name])),
                           config.seed, config.message_delay, config.difficulty)

    def _check_genesis(self, node: LedgerNode) -> None:
        recorded = dict(node.view().genesis or {})
        gate, experts = initial_weights(self.config, self.spec, self.dataset.input_dim, self.factory)
        expected = genesis_payload(self.config, self.ids, self.spec, cid_of(serialize_tensors(gate)),
                                   [cid_of(serialize_tensors(w)) for w in experts])
        recorded.pop("config_hash", None)
        expected.pop("config_hash", None)
        if self.config.consensus == "ethereum":  # the contract's address is known once deployed: the engine matters
            recorded["consensus"] = {"engine": dict(recorded.get("consensus") or {}).get("engine")}
        if json.loads(json.dumps(expected)) != recorded:
            raise ConfigError("the run directory's chain was made with other settings (seed, N, K, M, "
                              "dataset, experts or rule differ); use a new --run-dir")

    # ------------------------------------------------------------------ running rounds

    @property
    def trained_rounds(self) -> int:
        return self.node.view().train_tasks

    @property
    def head_hash(self) -> str | None:
        """The hash of the last sealed block (None for a framework that keeps no ledger)."""
        return self.node.head_hash if self.node.seals else None

    def train(self, rounds: int | None = None, on_round: RoundCallback | None = None) -> list[RoundOutcome]:
        """Train until ``rounds`` (default ``config.rounds``) rounds are sealed; resumes where it stopped."""
        total = self.config.rounds if rounds is None else rounds
        outcomes = []
        for round_index, indices in task_batches(self.dataset, self.config.batch_size, self.config.seed, total):
            if round_index < self.trained_rounds:
                continue
            x, y = self.dataset.x_train[indices], self.dataset.y_train[indices]
            outcome = run_round(self.participants, round_index, x, y, train=True, lr=self.config.lr,
                                balance=self.config.balance)
            self._after_round()
            record = _round_record(outcome, y)
            if (round_index + 1) % self.config.eval_every == 0 or round_index + 1 == total:
                record["test_accuracy"] = self.evaluate()
            self.history.append(record)
            outcomes.append(outcome)
            if on_round is not None:
                on_round(outcome)
            self.quorum.check()  # QuorumStalled once ``stall_after`` tasks in a row had no quorum
        return outcomes

    def run_published(self, task: Transaction) -> RoundOutcome:
        """Run the round of a task a publisher signed and stored elsewhere (a deployment's validator)."""
        x, y = decode_task(self.store.get(task.payload["data_cid"]))
        check_task_fits(x, y, tuple(self.dataset.input_shape), self.dataset.num_classes)
        train = task.payload.get("kind") == "train"
        outcome = run_round(self.participants, int(task.payload["round"]), x, y, train=train, lr=self.config.lr,
                            balance=self.config.balance, task=task)
        self._after_round()
        return outcome

    def infer(self, x: torch.Tensor, y: torch.Tensor | None = None) -> RoundOutcome:
        """One inference task through the framework (steps 1-3 and 6), sealed on the ledger."""
        check_task_fits(x, None, tuple(self.dataset.input_shape), self.dataset.num_classes)
        outcome = run_round(self.participants, self.node.view().task_count, x, None, train=False,
                            lr=self.config.lr)
        self._after_round()
        if y is not None:
            self.history.append(_round_record(outcome, y))
        return outcome

    def infer_test_set(self, batch_size: int | None = None,
                       on_round: RoundCallback | None = None) -> float:
        """Accuracy of framework inference (attacks included) over the whole test set."""
        return sum(self.infer_test_tasks(batch_size, on_round)) / self.dataset.num_test

    def infer_test_tasks(self, batch_size: int | None = None,
                         on_round: RoundCallback | None = None) -> list[int]:
        """The test set through framework inference in tasks of ``batch_size``: each task's correct answers,
        in order (how a served model's accuracy moves while attackers act)."""
        size = batch_size or self.config.batch_size
        correct = []
        for start in range(0, self.dataset.num_test, size):
            x = self.dataset.x_test[start:start + size]
            y = self.dataset.y_test[start:start + size]
            outcome = self.infer(x, y)
            correct.append(int((outcome.logits.argmax(1) == y).sum()))
            if on_round is not None:
                on_round(outcome)
        return correct

    def _after_round(self) -> None:
        """After every round (trained, served or published): count a task without quorum, prune the store."""
        if self.node.seals:
            self.quorum.observe(self.node.view())
        self._prune()

    def _prune(self) -> None:
        if self.keep_objects:
            return
        state = self.node.view()
        if self.keep_evidence:
            for task in state.tasks.values():  # the latest block's
                self.evidence.update(evidence_objects(task, state.comparison.records_groups))
        keep = {state.gate_cid, *state.expert_cids, *self.evidence}
        for cid in list(self.store.cids()):
            if cid not in keep:
                self.store.delete(cid)

    def set_edge_behaviours(self, config: RunConfig) -> None:
        """Give the edges the behaviours ``config`` describes (malicious ratio, attack, collusion).

        Behaviour is private to each edge and not part of the protocol, so a trained model can be
        deployed among other attackers (the paper's inference experiments) on the same ledger.
        """
        for edge, behaviour in zip(self.edges, behaviours(config), strict=True):
            edge.behaviour = behaviour
            edge.collude = config.collude

    def set_edge_profiles(self, config: RunConfig) -> None:
        """Give the edges the numeric profiles ``config.fleet`` names (deploying on another fleet)."""
        runtimes = edge_runtimes(config, self.store, self.spec, self.factory)
        for edge, runtime in zip(self.edges, runtimes, strict=True):
            edge.runtime = runtime
        self.runtimes[:] = distinct(runtimes)  # the in-process gateway holds this same list

    # ------------------------------------------------------------------ the model on the ledger

    def model(self) -> MoE:
        """The MoE the ledger currently names: its gate CID and expert CIDs, loaded from the store."""
        state = self.node.view()
        with torch.device("meta"):  # no random init: the stored weights are assigned right away
            gate = LinearGate(self.dataset.input_dim, self.config.num_experts)
            experts = [build_expert(self.spec, self.factory) for _ in state.expert_cids]
        gate.load_state_dict(deserialize_tensors(self.store.get(state.gate_cid))[0], assign=True)
        for expert, cid in zip(experts, state.expert_cids, strict=True):
            expert.load_state_dict(deserialize_tensors(self.store.get(cid))[0], assign=True)
        return MoE(gate, experts, self.config.top_k, self.dataset.num_classes).eval()

    def evaluate(self, batch_size: int = 1000) -> float:
        """Test accuracy of the ledger's current model, computed locally (no edges, no attacks)."""
        model = self.model()
        correct = 0
        with torch.no_grad():
            for start in range(0, self.dataset.num_test, batch_size):
                logits = model(self.dataset.x_test[start:start + batch_size])
                correct += int((logits.argmax(1) == self.dataset.y_test[start:start + batch_size]).sum())
        return correct / self.dataset.num_test

    def close(self) -> None:
        if isinstance(self.store, DirectoryStore):
            self.store.flush()  # anything written after the last block (an evaluation, an unsealed round's objects)
        if self.node.chain is not None:
            self.node.chain.close()

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _own_validator_key(ids: Identities) -> Identity:
    """The validator key this process holds (validator-0's in a simulation, which holds them all)."""
    held = [v for v in ids.validators if isinstance(v, Identity)]
    if not held:
        raise ConfigError("a session runs a validator: give it one validator's key")
    return held[0]


def _recorded_hash(chain: ChainStore | None) -> str | None:
    """The ``config_hash`` the chain's genesis records, or None without a (readable) genesis."""
    if chain is None or chain.height() < 0:
        return None
    try:
        payload = chain.block_at(0).transactions[0].payload
    except (LedgerError, IndexError):
        return None  # LedgerNode.open names what is wrong with the chain
    value = payload.get("config_hash")
    return value if isinstance(value, str) else None


def _round_record(outcome: RoundOutcome, y: torch.Tensor) -> dict[str, Any]:
    accuracy = float((outcome.logits.argmax(1) == y).float().mean())
    times = outcome.times
    return {
        "round": outcome.round, "kind": outcome.kind, "loss": outcome.loss, "batch_accuracy": accuracy,
        "accepted": outcome.accepted, "rejected": outcome.rejected, "misbehaviour": outcome.misbehaviour,
        "time_gate": times.gate, "time_compute": times.compute, "time_verify": times.verify, "time_loss": times.loss,
        "time_update": times.update, "time_consensus": times.consensus, "time_mine": outcome.mine_seconds,
        "time_edge": outcome.edge_seconds, "time_edge_total": outcome.edge_total_seconds,
        "bytes_total": outcome.traffic.total, "bytes_max_edge": outcome.traffic.max_edge,
        "block_bytes": outcome.block_bytes, "counts": outcome.counts,
    }
