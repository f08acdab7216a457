"""Reading a language model's run directory: its settings, the model its ledger holds, its tokenizer, its curves.

A B-MoE run's model is what its chain says: the trusted object (``gate_cid``) and each (layer, expert)'s accepted
object, replayed from the chain (``bmoe audit`` is the check of that chain; this only reads it). A traditional run
keeps no chain: its session records the CIDs of its (unverified) model in ``model.json`` at every validation.

Must not know: click.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bmoe.fileio import read_regular_text
from bmoe.ledger.errors import LedgerError
from bmoe.ledger.snapshot import chain_snapshot
from bmoe.ledger.state import LedgerState, apply_block
from bmoe.lm.model import MoETransformer
from bmoe.lm.tokenizer import Tokenizer, tokenizer_from_bytes
from bmoe.protocol.lm.trusted import assemble, decode_trusted
from bmoe.run.config_checks import ConfigError
from bmoe.run.lm.config import LMRunConfig
from bmoe.run.lm.session import CHAIN_FILE, CONFIG_FILE, MODEL_FILE, STORE_DIR
from bmoe.run.lm.settings_file import read_lm_settings
from bmoe.storage import DirectoryStore, StorageError


@dataclass(frozen=True)
class LMRun:
    config: LMRunConfig
    model: MoETransformer
    tokenizer: Tokenizer
    gate_cid: str
    expert_cids: list[str]
    height: int | None  # the chain's height (None: a traditional run, no chain)


def read_settings(run_dir: Path) -> LMRunConfig:
    path = run_dir / CONFIG_FILE
    if not path.is_file():
        raise ConfigError(f"{run_dir} is not a language model's run directory (no {CONFIG_FILE})")
    return read_lm_settings(path)


def chain_states(chain_path: Path) -> Iterator[LedgerState]:
    """The state after each block of the chain at ``chain_path``, replayed from a private copy (read, not judged:
    ``bmoe audit`` judges a chain; this reads one). ``LedgerError`` for a chain that does not apply."""
    with chain_snapshot(chain_path) as chain:
        state = LedgerState()
        for block in chain.iter_blocks():
            state = apply_block(state, block)
            yield state


def model_cids(run_dir: Path) -> tuple[str, list[str], int | None]:
    """The trusted object's and the experts' CIDs of the model the run holds, and the chain's height."""
    chain_path = run_dir / CHAIN_FILE
    if chain_path.exists():
        try:
            state = LedgerState()
            for state in chain_states(chain_path):  # noqa: B007  (the last one is the run's)
                pass
        except LedgerError as err:
            raise ConfigError(f"{chain_path}: {err}") from None
        return state.gate_cid, list(state.expert_cids), state.height
    path = run_dir / MODEL_FILE
    if not path.is_file():
        raise ConfigError(f"{run_dir} holds neither a chain nor {MODEL_FILE}: no model to read")
    try:
        recorded = json.loads(read_regular_text(path))
        return str(recorded["gate_cid"]), [str(cid) for cid in recorded["expert_cids"]], None
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as err:
        raise ConfigError(f"{path}: {err}") from None


def open_lm_run(run_dir: Path) -> LMRun:
    """The run's settings, model and tokenizer (ConfigError / StorageError naming what is missing)."""
    config = read_settings(run_dir)
    gate_cid, expert_cids, height = model_cids(run_dir)
    try:
        store = DirectoryStore(run_dir / STORE_DIR, create=False)
        trusted = store.get(gate_cid)
        _, model_config, tokenizer_cid = decode_trusted(trusted)
        model = assemble(model_config, trusted, [store.get(cid) for cid in expert_cids])
        tokenizer = tokenizer_from_bytes(store.get(tokenizer_cid))
    except StorageError as err:
        raise ConfigError(f"{run_dir / STORE_DIR}: {err}") from None
    model.eval()
    return LMRun(config, model, tokenizer, gate_cid, expert_cids, height)


def read_history(path: Path) -> dict[str, list[dict[str, Any]]]:
    """``history.json``'s rounds and validation points (lists of objects; empty when absent or unreadable: not on
    the ledger, shown as the run's own record)."""
    try:
        body = json.loads(read_regular_text(path))
    except (OSError, UnicodeDecodeError, ValueError):
        body = {}
    body = body if isinstance(body, dict) else {}
    return {key: [row for row in body.get(key, []) if isinstance(row, dict)]
            if isinstance(body.get(key), list) else [] for key in ("rounds", "validation")}
