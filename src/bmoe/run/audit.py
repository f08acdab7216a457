"""The audit of a run directory: what its chain is anchored to beyond itself (``ledger/audit.py`` replays it).

Owns:

- the genesis's rules (engine, validators, difficulty), always: nothing is read from ``config.json``
  to decide whether a block's seal is good;
- the run's ``config.json``, when present: its settings hash must be the genesis's (a chain of another
  run fails), and so must the participants' keys: under keys derived from the seed (a genesis without
  ``"keys": "enrolled"``), the ones the config's seed derives; under enrolled keys, the public keys the
  caller read from an enrolment file, and the report says which keys a run has;
- the head the run recorded in ``metrics.json``, when present, and the last sealed block its chain store
  anchored in ``head.json`` after each block (present from the first block on, so a killed run is
  anchored too): each must be in the chain at its height (a truncated chain, or a corrupted WAL that
  lost blocks, fails);
- block hashes the user recorded (``--expect-head``): each must be in the chain (a whole substituted run
  directory fails);
- a chain sealed on Ethereum is checked against its contract when a node is given or recorded.

It never writes: the chain is read from a private copy, the store is opened without creating it. A run whose
objects live on an IPFS node (``--store ipfs``), or any run with an IPFS API given, is checked against the
node's copies, each verified against its CID. A cluster's audit is :mod:`bmoe.net.cluster.audit`; the command
line, :mod:`bmoe.cli.audit`.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bmoe.credentials import rpc_url_from_environment
from bmoe.fileio import read_regular_text
from bmoe.ledger.audit import Anchors, AuditFailure, AuditReport, BlockAnchor, audit
from bmoe.ledger.blocks import Block, block_from_bytes
from bmoe.ledger.chainstore import ChainStore
from bmoe.ledger.encoding import is_hex64
from bmoe.ledger.errors import ChainStoreError, LedgerError
from bmoe.ledger.head_anchor import read_head_anchor
from bmoe.ledger.keys import ENROLLED_KEYS
from bmoe.ledger.snapshot import chain_snapshot
from bmoe.ledger.state import LedgerState
from bmoe.protocol.generation.replay import audit_generation
from bmoe.protocol.grouped_check import block_check
from bmoe.run.config import ConfigError
from bmoe.run.lm.config import LM_CONFIG_FILE, LMRunConfig
from bmoe.run.run_dir import HEAD_FILE, read_config_file, recorded_settings
from bmoe.run.session import CHAIN_FILE, CONFIG_FILE, STORE_DIR
from bmoe.run.setup import derive_identities, enrolled_identities
from bmoe.storage import BlobStore, DirectoryStore

METRICS_FILE = "metrics.json"
BlockCheck = Callable[[LedgerState, Block], str | None]


class AuditSetupError(ConfigError):
    """The audit's inputs are unusable (not a run directory, an unreadable anchor file, a bad flag)."""


def _read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(read_regular_text(path))
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise AuditSetupError(f"{path}: cannot read {what}: {err}") from None


def config_anchor(path: Path, seeded: bool = True, enrolled: Mapping[str, str] | None = None,
                  enrolment_source: str = "") -> tuple[dict[str, Any], str] | None:
    """Genesis fields a ``config.json`` implies (settings hash, participants' addresses), or None if absent.

    ``seeded``: the genesis says its keys derive from the seed, so the config's seed gives the addresses;
    else they are ``enrolled``'s (when given; without it only the settings hash is anchored)."""
    if not path.exists():
        return None
    config = read_config_file(path)  # a regular file holding a JSON object of valid settings, or ConfigError
    fields: dict[str, Any] = {"config_hash": config.hash(), "keys": None if seeded else ENROLLED_KEYS}
    source = str(path)
    if seeded or enrolled is not None:
        try:
            ids = derive_identities(config) if seeded else enrolled_identities(config, enrolled or {})
        except ConfigError as exc:
            raise AuditFailure(f"{enrolment_source}: {exc}") from None
        fields.update({"publisher": ids.publisher.address, "validators": [v.address for v in ids.validators],
                       "edges": [e.address for e in ids.edges]})
        source = str(path) if seeded else f"{path} and {enrolment_source}"
    return fields, source


def genesis_keys(chain: ChainStore) -> str:
    """What the genesis says of its keys: ``"enrolled"`` (held by their owners) or ``"seeded"`` (derived from
    the run's seed, every genesis without the field); ``"seeded"`` for a block 0 that does not read (the
    audit names what is wrong with it)."""
    genesis = _genesis_payload(chain)
    return ENROLLED_KEYS if genesis is not None and genesis.get("keys") == ENROLLED_KEYS else "seeded"


def keys_line(genesis: Mapping[str, Any] | None) -> str:
    """The audit's sentence on whose keys sign the run."""
    if genesis is not None and genesis.get("keys") == ENROLLED_KEYS:
        return "keys: enrolled public keys, each held by its owner (the genesis records keys: enrolled)"
    return ("keys: derived from the run's seed (a reproducible simulation: anyone who knows the seed can sign "
            "as any participant)")


def metrics_anchor(path: Path) -> BlockAnchor | None:
    """The head a finished run recorded in ``metrics.json``, or None if the file is absent."""
    if not path.exists():
        return None
    body = _read_json(path, "the run's metrics")
    summary = body.get("summary") if isinstance(body, dict) else None
    head = summary.get("head_hash") if isinstance(summary, dict) else None
    height = summary.get("height") if isinstance(summary, dict) else None
    if not is_hex64(head) or not isinstance(height, int) or isinstance(height, bool):
        raise AuditFailure(f"{path}: summary.head_hash / summary.height are not a block hash and a height")
    return BlockAnchor(str(head), height, str(path))


def head_anchor(path: Path) -> BlockAnchor | None:
    """The last sealed block the chain store anchored in ``head.json``, or None if the file is absent."""
    try:
        anchor = read_head_anchor(path)
    except ChainStoreError as err:
        raise AuditFailure(str(err)) from None
    return None if anchor is None else BlockAnchor(anchor.head_hash, anchor.height, str(path))


def expected_heads(values: tuple[str, ...]) -> tuple[BlockAnchor, ...]:
    anchors = []
    for value in values:
        if not is_hex64(value):
            raise AuditSetupError(f"--expect-head must be a 64-character lower-case hex block hash, got {value!r}")
        anchors.append(BlockAnchor(value, None, "--expect-head"))
    return tuple(anchors)


def chain_path(directory: Path) -> Path:
    if not directory.is_dir():
        raise AuditSetupError(f"run directory {directory} does not exist or is not a directory")
    path = directory / CHAIN_FILE
    if not path.exists():
        raise AuditSetupError(f"{directory} has no {CHAIN_FILE}: not a B-MoE run directory")
    return path


@contextmanager
def run_objects(run_dir: Path, ipfs_api: str | None) -> Iterator[BlobStore]:
    """The run's objects: on the IPFS node given, else on the one the run recorded, else in its ``store/``."""
    from bmoe.storage.ipfs import DEFAULT_API, IpfsStore

    recorded = recorded_settings(run_dir) if ipfs_api is None else None
    if ipfs_api is not None or (recorded is not None and recorded.store == "ipfs"):
        with IpfsStore(ipfs_api or (recorded and recorded.ipfs_api) or DEFAULT_API) as node:
            node.ping()  # only reads: pin/ls and cat, every object verified against its CID
            yield node
        return
    root = run_dir / STORE_DIR
    if root.exists() and not root.is_dir():
        raise AuditSetupError(f"{root} is not a directory: the run's object store is missing")
    yield DirectoryStore(root, create=False)


def audit_run_dir(run_dir: Path, heads: tuple[BlockAnchor, ...], ipfs_api: str | None = None,
                  rpc_url: str | None = None, enrolled: Mapping[str, str] | None = None,
                  enrolment_source: str = "") -> AuditReport:
    """Audit one run directory against its own anchors and the user's (a chain sealed on Ethereum: the
    contract's chain, with the run directory's as a copy that must agree); ``enrolled``: the public keys (read
    from ``enrolment_source``) a genesis of enrolled keys must hold."""
    with chain_snapshot(chain_path(run_dir)) as chain, run_objects(run_dir, ipfs_api) as store:
        seeded = genesis_keys(chain) != ENROLLED_KEYS
        genesis = config_anchor(run_dir / CONFIG_FILE, seeded, enrolled, enrolment_source)
        recorded = metrics_anchor(run_dir / METRICS_FILE)
        sealed = head_anchor(run_dir / HEAD_FILE)
        anchors = Anchors(blocks=heads + tuple(anchor for anchor in (recorded, sealed) if anchor is not None),
                          genesis=genesis[0] if genesis else {}, genesis_source=genesis[1] if genesis else "")
        unanchored = [f"{name} absent" for name, used in ((CONFIG_FILE, genesis), (METRICS_FILE, recorded),
                                                          (HEAD_FILE, sealed)) if used is None]
        if not seeded and enrolled is None:
            unanchored.append("the enrolled public keys (give --enrolled FILE)")
        if rpc_url is not None and ethereum_section(chain) is None:
            raise AuditSetupError(f"--rpc-url: {run_dir}'s chain is not sealed on Ethereum")
        rpc_url = rpc_url or rpc_url_from_environment() or _recorded_rpc_url(run_dir)
        lm = lm_anchor(run_dir, seeded)
        if lm is not None:  # a language model's run: its settings anchor the genesis, and every round is replayed
            anchors = dataclasses.replace(anchors, genesis=lm[0], genesis_source=str(run_dir / LM_CONFIG_FILE))
            unanchored = [item for item in unanchored  # files a language model's run never writes
                          if item not in (f"{CONFIG_FILE} absent", f"{METRICS_FILE} absent")]
        report = audit_chain(chain, store, anchors, rpc_url, lm[1] if lm is not None else None)
        if report.state.generations or report.state.fleet.declared:  # verified generation: every chunk's calls
            # re-computed with the ledger's experts, every placement's slot sizes the stored experts'
            report.generation_chunks, check = audit_generation(report.state, chain.iter_blocks(), store)
            if check.missized:
                raise AuditFailure("placements not made over the stored experts: " + ", ".join(check.missized[:5]))
            report.generation_calls = check.rechecked
            if check.wrong:
                raise AuditFailure("accepted outputs that the ledger's experts do not give: "
                                   + ", ".join(check.wrong[:5]))
            if check.misbilled:
                raise AuditFailure("settlements the chunks' records do not back: " + ", ".join(check.misbilled[:5]))
    report.unanchored = unanchored + report.unanchored
    return report


def audit_chain(chain: ChainStore, store: BlobStore, anchors: Anchors, rpc_url: str | None,
                lm_settings: LMRunConfig | None = None) -> AuditReport:
    """Audit one chain file: a chain sealed on Ethereum, with a node to ask, as the chain its contract sealed
    (the file a copy that must agree); else the file itself, saying so when its contract was not consulted.
    ``lm_settings``: a language model's run, whose rounds are replayed (``protocol/lm/replay.py``)."""
    check = block_check(store)
    if lm_settings is not None:
        import torch

        from bmoe.protocol.lm.replay import lm_block_check

        torch.set_num_threads(lm_settings.run.threads)  # the validators' float work, replayed on their thread count
        check = both_checks(check, lm_block_check(store, lm_settings.lm.lr))
    section = ethereum_section(chain)
    if section is not None and rpc_url:
        from bmoe.ethereum.audit_run import audit_on_contract

        return audit_on_contract(rpc_url, section, chain, store, anchors, check)
    report = audit(chain, store, anchors, check)
    if section is not None:
        report.unanchored.append("the Ethereum contract that sealed it (give --rpc-url URL)")
    return report


def _genesis_payload(chain: ChainStore) -> Mapping[str, Any] | None:
    """Block 0's genesis payload, or None when it does not read as one (not trusted yet: the audit checks it)."""
    first = next(iter(chain.iter_raw()), None)
    if first is None or not isinstance(first[2], bytes | bytearray | memoryview):
        return None
    try:
        genesis = block_from_bytes(bytes(first[2])).transactions
    except LedgerError:
        return None
    return genesis[0].payload if genesis and genesis[0].kind == "genesis" else None


def ethereum_section(chain: ChainStore) -> dict[str, Any] | None:
    """The genesis's consensus section when block 0 reads as a genesis sealing on Ethereum, else None (the
    chain is not trusted yet: a block 0 that does not read is the audit's to name)."""
    genesis = _genesis_payload(chain)
    section = genesis.get("consensus") if genesis is not None else None
    return dict(section) if isinstance(section, dict) and section.get("engine") == "ethereum" else None


def _recorded_rpc_url(run_dir: Path) -> str | None:

    recorded = recorded_settings(run_dir)
    return None if recorded is None else recorded.rpc_url


def evidence_summary(report: AuditReport) -> str:
    """What the audit checked of the edges' answers, in words (``bmoe audit``'s report, the explorer's run page)."""
    if report.state.comparison.records_groups:
        return (f"{report.evidence_required} committed answers, from which every recorded group, accepted value "
                f"and distance was re-derived ({report.state.comparison.name})")
    return (f"{report.evidence_required} evidence objects behind misbehaviour records, "
            f"{report.evidence_checked} other commitments ({report.evidence_missing} absent)")




def both_checks(first: BlockCheck, second: BlockCheck) -> BlockCheck:
    """A block check that runs ``first``, then ``second``, and reports the first failure."""
    def check(state: LedgerState, block: Block) -> str | None:
        return first(state, block) or second(state, block)
    return check


def lm_anchor(run_dir: Path, seeded: bool) -> tuple[dict[str, Any], LMRunConfig] | None:
    """A language model's run (``lm.json``): the genesis fields its settings imply (hash, seeded keys) and the
    settings, or None for another run."""
    path = run_dir / LM_CONFIG_FILE
    if not path.exists():
        return None
    try:
        config = LMRunConfig.from_dict(_read_json(path, str(path)))
    except (ConfigError, TypeError) as err:
        raise AuditSetupError(f"{path}: {err}") from None
    fields: dict[str, Any] = {"config_hash": config.hash(), "keys": None if seeded else ENROLLED_KEYS}
    if seeded:
        ids = derive_identities(config.run)
        fields.update({"publisher": ids.publisher.address, "validators": [v.address for v in ids.validators],
                       "edges": [e.address for e in ids.edges]})
    return fields, config
