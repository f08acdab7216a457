"""The run configuration: one dataclass, defaults with their reasons, unknown keys rejected.

Its hash is recorded in the genesis transaction and in the run directory, so a chain always says
which settings produced it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from bmoe.edge.fleet import is_default_fleet, parse_fleet
from bmoe.ledger.economics import Economics
from bmoe.ledger.encoding import canonical_json, sha256_hex
from bmoe.protocol.config_checks import (
    CONSENSUS_ENGINES,
    FRAMEWORKS,
    SETTINGS,
    VALIDATOR_ATTACKS,
    ConfigError,
    check_settings,
)
from bmoe.protocol.quorum_watch import DEFAULT_STALL_AFTER
from bmoe.verify.assignment import Adaptive, Sampled
from bmoe.verify.bound_window import Calibrated, bound_in_force
from bmoe.verify.comparison import DEFAULT_RESULT_BOUND, DEFAULT_UPDATE_BOUND, Tolerance, make_comparison
from bmoe.verify.framework import framework_of

# Settings that change how a run executes, never what it records: left out of the recorded hash, so
# (for example) the ledger is identical with compute sharing on and off, or with more rounds resumed.
# Where the objects live is one of them: the same bytes have the same CID in every store.
# So is where the Ethereum node answers and which key file holds the sealing account (the genesis names the
# chain id, the contract and the account).
# So is when a run stops for want of quorum (``stall_after``): an alarm, not a rule of the ledger.
EXECUTION_SETTINGS = frozenset({"share_compute", "threads", "eval_every", "rounds", "limit_test", "data_dir", "store",
                                "ipfs_api", "rpc_url", "eth_key", "stall_after"})
__all__ = ["CONSENSUS_ENGINES", "EXECUTION_SETTINGS", "FRAMEWORKS", "VALIDATOR_ATTACKS", "ConfigError", "RunConfig",
           "from_dict"]


@dataclass(frozen=True)
class RunConfig:
    framework: str = "bmoe"  # "bmoe" (redundant + verified) or "traditional" (edge i hosts expert i)
    dataset: str = "digits"  # bundled offline; "fashion-mnist" is the paper's (Sec. V)
    data_dir: str | None = None
    limit_train: int | None = None
    limit_test: int | None = None
    num_experts: int = 10  # N (paper, Sec. V)
    top_k: int = 3  # K (paper, Sec. V)
    num_edges: int = 10  # M (paper, Sec. V)
    expert: str = "mlp"  # paper: MLP for Fashion-MNIST, CNN for CIFAR-10
    hidden: int = 256  # paper: 256 hidden units
    rounds: int = 100  # T training rounds (paper: 1500)
    batch_size: int = 100  # samples per task (paper: 1000)
    lr: float = 0.1  # plain SGD (stateless, so an update is a pure function of weights and gradient)
    balance: float = 0.01  # load-balancing loss weight at the gate (Switch Transformer's 0.01); 0 = off
    malicious_ratio: float = 0.0  # fraction of edges that are malicious; the last ones are
    attack: str = "gaussian"  # the paper's attack; any registered behaviour name
    attack_params: dict[str, float] = field(default_factory=dict)  # probability, noise_std, ...
    collude: bool = True  # paper: malicious edges in B-MoE publish identical manipulated results
    assignment: str = "all"  # B-MoE: "all" (the paper: every edge computes every activated expert) | "sampled"
    replicas: int = 3  # "sampled": r of the M edges per (task, expert), drawn from the chain (verify/assignment)
    trusted_replicas: int = 2  # "adaptive": the sample where the drawn edges are all trusted (at least 2)
    trust_after: int = 20  # "adaptive": accepted answers in a row, since the last accusation, that earn trust
    rule: str = "majority"  # acceptance rule (B-MoE Sec. III-C: majority)
    rule_fraction: float = 2 / 3  # for rule "fraction"
    comparison: str = "exact"  # exact | tolerance | integer (verify/comparison.py)
    result_bound: float = DEFAULT_RESULT_BOUND  # tolerance: per-sample ‖Δ‖/max(‖y‖, 0.1) of results
    update_bound: float = DEFAULT_UPDATE_BOUND  # tolerance: element-wise |Δ| / max(1, |w|) of updated weights
    calibration_cid: str | None = None  # tolerance: the CID of the calibration.json the bounds are checked against
    calibrated_result_max: float | None = None  # its largest honest per-sample divergence of results
    calibrated_update_max: float | None = None  # its largest honest |Δw| of updates
    force_bound: bool = False  # run with bounds outside the calibration's window (verify/bound_window.py)
    difficulty: int = 8  # PoW leading zero bits; low so a demo round seals in milliseconds
    consensus: str = "pow"  # "pow" (the paper's; one proposer mines), "pbft" (validators vote) or "ethereum"
    validators: int = 1  # PBFT: n validators, tolerating f = (n - 1) // 3 Byzantine ones
    byzantine_validators: int = 0  # PBFT: how many of them misbehave (the first: view 0's primary is one)
    validator_attack: str = "tamper"  # tamper | silent | equivocate | garbage | replay
    message_delay: float = 0.01  # PBFT: simulated one-way message delay (seconds)
    share_compute: bool = True  # compute identical honest replicas once (exact; see edge/runtime)
    eval_every: int = 10  # rounds between test-set evaluations
    stall_after: int = DEFAULT_STALL_AFTER  # tasks in a row without quorum before a run stops (0: never); see
    # protocol/quorum_watch.py: a persistent split reaches 10 in 10 rounds, a 0.2-probability attacker by chance ~never
    seed: int = 0  # fixes data order, initial weights, attacks and keys
    threads: int = 1  # torch threads; bit-exact agreement needs the same count on every edge
    fleet: str = ""  # edges' numeric profiles, "PROFILE=COUNT,..." in edge order (edge/profiles); "": all default
    validator_fleet: str = ""  # the validators' numeric profiles (in-process ones), in validator order; "": default
    stake: int = 0  # economics (ledger/economics.py): each edge's stake at enrolment, whole units; 0 = none
    reward: int = 1  # units earned per answer in an accepted group
    slash: int = 100  # units taken per proven dissent (at most the balance; burned)
    min_stake: int = 0  # an edge holding less when a task is activated is not assigned it
    store: str = "directory"  # where a run directory's objects live: "directory" (its store/) | "ipfs" (an IPFS
    # node); read by the command line (experiments/runs.run_store), not by Session, which takes the store it is given
    ipfs_api: str | None = None  # store "ipfs": the node's kubo HTTP RPC URL (None: kubo's http://127.0.0.1:5001)
    rpc_url: str | None = None  # consensus "ethereum": the node's JSON-RPC URL
    eth_key: str | None = None  # consensus "ethereum": the sealing account's key file (None: derived from the seed)

    def validate(self) -> RunConfig:
        """Check every setting (type, finite, range, sanity limits) and how they combine; see config_checks."""
        check_settings(self)
        return self

    @property
    def malicious_edges(self) -> int:
        """How many edges are malicious: round(ratio x edges in play), the last ones."""
        return int(self.malicious_ratio * self.edges_in_play + 0.5)

    @property
    def edges_in_play(self) -> int:
        return framework_of(self.framework).edges_in_play(self.num_experts, self.num_edges)

    @property
    def edge_profiles(self) -> tuple[str, ...]:
        """Each edge's numeric profile name, in edge order."""
        return parse_fleet(self.fleet, self.edges_in_play)

    @property
    def validator_profiles(self) -> tuple[str, ...]:
        """Each validator's numeric profile, in validator order (validator-0 first)."""
        return parse_fleet(self.validator_fleet, self.validators)

    def assignment_spec(self) -> str | dict[str, Any]:
        """The assignment policy, as the genesis records it: traditional hosts expert i on edge i."""
        fixed = framework_of(self.framework).assignment
        if fixed is not None:
            return fixed
        if self.assignment == "adaptive":
            return Adaptive(self.replicas, self.trusted_replicas, self.trust_after).spec()
        return Sampled(self.replicas).spec() if self.assignment == "sampled" else "all"

    def economics_spec(self, edges: list[str]) -> dict[str, Any] | None:
        """Stake, rewards and slashing as the genesis records them for ``edges``, or None without a stake."""
        if not self.stake:
            return None
        return Economics({edge: self.stake for edge in edges}, self.reward, self.slash, self.min_stake).spec()

    def comparison_spec(self) -> str | dict[str, Any]:
        """The comparison in force, as the genesis records it (its bounds when it has any)."""
        if self.comparison == "tolerance":
            return Tolerance(result_bound=self.result_bound, update_bound=self.update_bound).spec()
        return make_comparison(self.comparison).spec()

    def calibration(self) -> Calibrated | None:
        """The calibration the bounds are checked against, as the genesis records it, or None."""
        if self.calibration_cid is None or self.calibrated_result_max is None or self.calibrated_update_max is None:
            return None
        return Calibrated(self.calibration_cid, self.calibrated_result_max, self.calibrated_update_max)

    def bound_genesis(self) -> dict[str, Any]:
        """What the genesis records of the bounds: the comparison, and the calibration when there is one."""
        recorded: dict[str, Any] = {"comparison": self.comparison_spec()}
        calibration = self.calibration()
        if calibration is not None:  # only a run whose bounds were checked against a calibration records these
            recorded["calibration"] = calibration.spec()
            if self.force_bound:
                recorded["force_bound"] = True
        return recorded

    def bound_in_force(self) -> str | None:
        """The bounds in force and their origin, in words (None without a tolerance comparison)."""
        return bound_in_force(self.bound_genesis())

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def hash(self) -> str:
        """SHA-256 of the settings that shape the ledger (all but :data:`EXECUTION_SETTINGS`)."""
        recorded = {key: value for key, value in self.to_dict().items() if key not in EXECUTION_SETTINGS}
        for fleet in ("fleet", "validator_fleet"):  # a homogeneous default fleet hashes as before the setting existed
            if is_default_fleet(recorded[fleet]):
                del recorded[fleet]
        if self.assignment == "all":  # the paper's policy hashes as before the setting existed
            del recorded["assignment"], recorded["replicas"]
        if self.assignment != "adaptive":  # settings only the adaptive policy reads
            del recorded["trusted_replicas"], recorded["trust_after"]
        if self.comparison != "tolerance":  # bounds only a tolerance comparison reads hash as before they existed
            del recorded["result_bound"], recorded["update_bound"]
        if self.calibration_cid is None:  # a run without a calibration hashes as before the settings existed
            del recorded["calibration_cid"], recorded["calibrated_result_max"], recorded["calibrated_update_max"]
        if not self.force_bound:
            del recorded["force_bound"]
        if not self.stake:  # a run without economics hashes as before the settings existed
            del recorded["stake"], recorded["reward"], recorded["slash"], recorded["min_stake"]
        return sha256_hex(canonical_json(recorded))

    def replace(self, **changes: Any) -> RunConfig:
        return from_dict({**self.to_dict(), **changes})


def from_dict(data: Mapping[str, Any]) -> RunConfig:
    """Build a validated config from a mapping (a run's config.json), rejecting unknown keys by name.

    Whole numbers given for float settings become floats, so ``"lr": 1`` and ``"lr": 1.0`` hash alike.
    """
    if not isinstance(data, Mapping):
        raise ConfigError(f"settings must be a mapping of setting names to values, got {type(data).__name__}")
    known = {f.name for f in dataclasses.fields(RunConfig)}
    unknown = sorted(str(key) for key in set(data) - known)
    if unknown:
        raise ConfigError(f"unknown setting(s): {', '.join(unknown)}")
    return RunConfig(**{key: _as_float(key, value) for key, value in data.items()}).validate()


def _as_float(key: str, value: Any) -> Any:
    kind = SETTINGS[key].kind
    if kind == "float" and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if kind == "params" and isinstance(value, dict):
        return {k: float(v) if isinstance(v, int) and not isinstance(v, bool) else v for k, v in value.items()}
    return value
