"""A hostile party with write access to a run directory cannot make the audit say OK.

The audit takes its rules from the genesis (who seals, by which engine, at which difficulty), is
anchored to the run's config.json and recorded head and to heads the user gives, requires the evidence
behind every accusation, and never writes into what it audits. Each test builds its hostile input
generically (every header field, every column, byte ranges of every row, every shape of empty chain).
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from bmoe.data import Dataset
from bmoe.experiments.runs import train_run
from bmoe.ledger.audit import AuditReport, BlockAnchor
from bmoe.ledger.blocks import Block, BlockHeader, header_hash
from bmoe.ledger.errors import LedgerError
from bmoe.ledger.keys import derive_identity
from bmoe.ledger.merkle import merkle_root
from bmoe.ledger.state import LedgerState, apply_block, begin_block, finish_block, state_root
from bmoe.run.audit import audit_run_dir
from bmoe.run.config import ConfigError, RunConfig
from bmoe.run.session import Session
from bmoe.storage import DirectoryStore
from tests.conftest import small_config
from tests.ledger.chain_surgery import (
    append_block,
    blocks_of,
    execute,
    read_rows,
    record_head,
    reseal,
    reseal_from,
    tree_state,
    write_rows,
)

ROUNDS = 3
ATTACKED = {"malicious_ratio": 0.4, "attack_params": {"probability": 1.0}}
OUTSIDER = derive_identity(b"not a key of the run", "mallory")


def make_run(root: Path, data: Dataset, config: RunConfig) -> Path:
    run_dir = root / "run"
    with Session(config, dataset=data, run_dir=run_dir) as session:
        train_run(config, run_dir, session=session)
    return run_dir


@pytest.fixture(scope="module")
def clean_run(tmp_path_factory: pytest.TempPathFactory, tiny_data: Dataset) -> Path:
    return make_run(tmp_path_factory.mktemp("clean"), tiny_data, small_config(rounds=ROUNDS, **ATTACKED))


@pytest.fixture
def run(clean_run: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "run"
    shutil.copytree(clean_run, copy)
    return copy


def insider(run_dir: Path) -> object:
    """validator-0's key: in-process runs derive keys from the seed recorded in config.json."""
    return derive_identity(json.loads((run_dir / "config.json").read_text())["seed"], "validator-0")


def fails(run_dir: Path, *needles: str, heads: tuple[BlockAnchor, ...] = ()) -> str:
    with pytest.raises((LedgerError, ConfigError)) as caught:  # both: one line, exit 2 at the CLI
        audit_run_dir(run_dir, heads)
    message = str(caught.value)
    for needle in needles:
        assert needle in message, message
    return message


def test_a_clean_run_audits_and_says_what_anchors_it(run: Path) -> None:
    report = audit_run_dir(run, ())
    assert report.blocks == ROUNDS + 1 and report.evidence_required > 0
    assert report.seal_rules == "proof of work at difficulty 4 by 1 genesis validator(s)"
    anchors = " ".join(report.anchored_to)
    assert report.block_hashes[0] in anchors and "config.json" in anchors and "metrics.json" in anchors


HEADER_CHANGES: dict[str, Callable[[BlockHeader], BlockHeader]] = {
    "same header": lambda h: h,
    "difficulty 0": lambda h: dataclasses.replace(h, difficulty=0),
    "no state root": lambda h: dataclasses.replace(h, state_root=""),
    "claims PBFT": lambda h: dataclasses.replace(h, consensus="pbft"),
    "other timestamp": lambda h: dataclasses.replace(h, timestamp=h.timestamp + 1),
}


def outsider_reason(change: str, height: int) -> str:
    """The seal rule an outsider's re-sealed block breaks first."""
    if height == 0:
        return "not by the genesis signer"
    return "sealed by pbft, but the genesis fixes pow" if change == "claims PBFT" else \
        "is not a validator enrolled in the genesis"


@pytest.mark.parametrize("height", [0, 1, ROUNDS])
@pytest.mark.parametrize("change", sorted(HEADER_CHANGES))
def test_an_outsider_who_reseals_any_block_and_relinks_the_rest_is_caught(run: Path, change: str,
                                                                         height: int) -> None:
    head = reseal_from(run / "chain.sqlite", height, OUTSIDER, HEADER_CHANGES[change])  # type: ignore[arg-type]
    record_head(run, head, ROUNDS)
    fails(run, f"block {height}: seal:", outsider_reason(change, height))


INSIDER_REASONS = {"difficulty 0": "seal: declares difficulty 0, the genesis fixes 4",
                   "no state root": "state root", "claims PBFT": "seal: sealed by pbft, but the genesis fixes pow"}


@pytest.mark.parametrize("change", sorted(INSIDER_REASONS))
def test_even_a_validator_key_cannot_seal_outside_the_genesis_rules(run: Path, change: str) -> None:
    head = reseal_from(run / "chain.sqlite", 2, insider(run), HEADER_CHANGES[change])  # type: ignore[arg-type]
    record_head(run, head, ROUNDS)
    fails(run, "block 2", INSIDER_REASONS[change])


def empty_block_on_top(chain: Path, signer: object) -> Block:
    """A well-formed empty block after the head (right Merkle and state roots), sealed by ``signer``."""
    blocks = blocks_of(chain)
    state = LedgerState()
    for block in blocks:
        state = apply_block(state, block)
    working = begin_block(state)
    finish_block(working, state.height + 1)
    last = blocks[-1]
    empty = dataclasses.replace(last, transactions=())
    return reseal(empty, signer, header_hash(last.header),  # type: ignore[arg-type]
                  lambda h: dataclasses.replace(h, height=h.height + 1, merkle_root=merkle_root([]),
                                                state_root=state_root(working)))


@pytest.mark.parametrize("who", ["outsider", "validator"])
def test_a_block_appended_by_an_outsider_is_caught_and_the_same_block_by_the_validator_is_not(run: Path,
                                                                                             who: str) -> None:
    chain = run / "chain.sqlite"
    block = empty_block_on_top(chain, OUTSIDER if who == "outsider" else insider(run))
    record_head(run, append_block(chain, block), ROUNDS + 1)
    if who == "validator":  # the control: the block itself is well formed
        assert audit_run_dir(run, ()).height == ROUNDS + 1
    else:
        fails(run, f"block {ROUNDS + 1}: seal: proposer", "is not a validator enrolled in the genesis")


@pytest.mark.parametrize("edit", ["delete", "difficulty 0", "not an object", "another lr"])
def test_config_json_cannot_lower_the_rules_and_an_edited_one_is_named(run: Path, edit: str) -> None:
    config = run / "config.json"
    body = json.loads(config.read_text())
    signer = insider(run)
    if edit == "delete":
        config.unlink()
    elif edit == "not an object":
        config.write_text("[1, 2]")
    else:
        body.update({"difficulty": 0} if edit == "difficulty 0" else {"lr": 0.3})
        config.write_text(json.dumps(body))
    head = reseal_from(run / "chain.sqlite", 1, signer, HEADER_CHANGES["difficulty 0"])  # type: ignore[arg-type]
    record_head(run, head, ROUNDS)
    message = fails(run)
    if edit == "delete":
        assert "block 1" in message and "genesis fixes 4" in message
    elif edit == "not an object":
        assert "config.json" in message and "JSON object" in message
    else:
        assert "config_hash differs from" in message and "config.json" in message


def test_a_pbft_chain_refuses_a_block_that_claims_proof_of_work(tmp_path: Path, tiny_data: Dataset) -> None:
    run_dir = make_run(tmp_path, tiny_data, small_config(rounds=2, consensus="pbft", validators=4))
    assert audit_run_dir(run_dir, ()).pbft_blocks == 2
    head = reseal_from(run_dir / "chain.sqlite", 2, insider(run_dir),  # type: ignore[arg-type]
                       lambda h: dataclasses.replace(h, consensus="pow"))  # a PoW block, no certificate
    record_head(run_dir, head, 2)
    fails(run_dir, "block 2", "sealed by pow, but the genesis fixes pbft")


def other_run(tmp_path: Path, data: Dataset) -> Path:
    return make_run(tmp_path / "other", data, small_config(rounds=ROUNDS, seed=12, **ATTACKED))


def test_a_foreign_chain_and_store_swapped_in_are_caught_by_the_runs_own_files(run: Path, tmp_path: Path,
                                                                              tiny_data: Dataset) -> None:
    foreign = other_run(tmp_path, tiny_data)
    (run / "chain.sqlite").unlink()
    shutil.rmtree(run / "store")
    shutil.copy(foreign / "chain.sqlite", run / "chain.sqlite")
    shutil.copytree(foreign / "store", run / "store")
    fails(run, "differs from", "config.json")
    (run / "config.json").unlink()
    fails(run, "metrics.json", "is not in the chain")


def test_a_whole_foreign_run_directory_passes_alone_and_fails_against_the_users_head(
        clean_run: Path, tmp_path: Path, tiny_data: Dataset) -> None:
    foreign = other_run(tmp_path, tiny_data)
    assert audit_run_dir(foreign, ()).blocks == ROUNDS + 1  # self-consistent: only an anchor can tell
    recorded = json.loads((clean_run / "metrics.json").read_text())["summary"]["head_hash"]
    fails(foreign, "--expect-head", "not in the chain", heads=(BlockAnchor(recorded, None, "--expect-head"),))


def empty_by_wal_loss(run_dir: Path) -> None:
    """A killed run whose blocks were all still in the write-ahead log, and the log deleted."""
    rows = read_rows(run_dir / "chain.sqlite")
    (run_dir / "chain.sqlite").unlink()
    db = sqlite3.connect(run_dir / "chain.sqlite")
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA wal_autocheckpoint=0")
    db.execute("CREATE TABLE blocks (height INTEGER PRIMARY KEY, hash TEXT UNIQUE NOT NULL, data BLOB NOT NULL)")
    db.executemany("INSERT INTO blocks VALUES (?, ?, ?)", rows)
    db.commit()
    shutil.copy(run_dir / "chain.sqlite", run_dir / "kept.sqlite")  # the main file alone, as a crash leaves it
    db.close()
    (run_dir / "chain.sqlite").unlink()
    (run_dir / "chain.sqlite-wal").unlink(missing_ok=True)
    (run_dir / "chain.sqlite-shm").unlink(missing_ok=True)
    (run_dir / "kept.sqlite").rename(run_dir / "chain.sqlite")


EMPTYING: dict[str, Callable[[Path], None]] = {
    "0-byte file": lambda d: (d / "chain.sqlite").write_bytes(b""),
    "rows deleted": lambda d: execute(d / "chain.sqlite", "DELETE FROM blocks"),
    "table dropped": lambda d: execute(d / "chain.sqlite", "DROP TABLE blocks"),
    "write-ahead log lost": empty_by_wal_loss,
}


@pytest.mark.parametrize("how", sorted(EMPTYING))
@pytest.mark.parametrize("with_metrics", [True, False])
def test_an_emptied_chain_is_a_fault_in_every_shape(run: Path, how: str, with_metrics: bool) -> None:
    if not with_metrics:
        (run / "metrics.json").unlink()
    EMPTYING[how](run)
    message = fails(run)
    assert "empty" in message or "no 'blocks' table" in message, message


@pytest.mark.parametrize("cut", [1, 2, ROUNDS])
def test_a_truncated_tail_is_caught_by_the_head_the_run_recorded(run: Path, cut: int) -> None:
    rows = read_rows(run / "chain.sqlite")
    write_rows(run / "chain.sqlite", rows[:-cut])  # type: ignore[arg-type]
    fails(run, "metrics.json", "is not in the chain")


def column_mutations(rows: list[tuple[int, str, bytes]]) -> list[tuple[str, list[tuple[object, object, object]]]]:
    """Every column of every row changed, and 8 evenly spread byte ranges of every row's data flipped."""
    out = []
    for i, (height, digest, data) in enumerate(rows):
        def put(row: tuple[object, object, object], i: int = i) -> list[tuple[object, object, object]]:
            return [*rows[:i], row, *rows[i + 1:]]
        out.append((f"row {i} height", put((height + 100, digest, data))))
        out.append((f"row {i} hash", put((height, digest[::-1], data))))
        out.append((f"row {i} data as text", put((height, digest, data.decode()))))
        for k in range(8):
            at = (len(data) * k) // 8
            flipped = bytearray(data)
            for j in range(at, min(at + 4, len(data))):
                flipped[j] ^= 0x01
            out.append((f"row {i} bytes {at}..{at + 4}", put((height, digest, bytes(flipped)))))
    return out


def test_every_column_and_byte_range_of_every_row_changed_is_caught(clean_run: Path, tmp_path: Path) -> None:
    pristine = read_rows(clean_run / "chain.sqlite")
    run_dir = tmp_path / "run"
    shutil.copytree(clean_run, run_dir)
    for name, rows in column_mutations(pristine):
        write_rows(run_dir / "chain.sqlite", rows)
        with pytest.raises(LedgerError):
            audit_run_dir(run_dir, ())
            pytest.fail(f"{name}: the audit said OK")
    write_rows(run_dir / "chain.sqlite", pristine)  # type: ignore[arg-type]
    assert audit_run_dir(run_dir, ()).head_hash == pristine[-1][1]


def accused_cids(run_dir: Path) -> list[str]:
    """The commitment CIDs that misbehaviour records name as evidence, replayed from the chain."""
    from bmoe.ledger.audit import evidence_objects
    from bmoe.ledger.state import apply_block

    state, found = LedgerState(), []
    for block in blocks_of(run_dir / "chain.sqlite"):
        state = apply_block(state, block)
        for task in state.tasks.values():
            found.extend(evidence_objects(task))
    return found


def test_deleted_evidence_behind_an_accusation_is_a_fault(run: Path) -> None:
    evidence = accused_cids(run)
    assert evidence, "the attacked run accused nobody"
    DirectoryStore(run / "store").path_of(evidence[-1]).unlink()
    fails(run, evidence[-1], "missing", "evidence of the misbehaviour record against edge")


HOSTILE: dict[str, Callable[[Path], None]] = {
    "clean": lambda d: None,
    "no store directory": lambda d: shutil.rmtree(d / "store"),
    "store is a file": lambda d: (shutil.rmtree(d / "store"), (d / "store").write_bytes(b"x")),  # type: ignore[func-returns-value]
    **EMPTYING,
    "table meta dropped": lambda d: execute(d / "chain.sqlite", "DROP TABLE meta"),
}


@pytest.mark.parametrize("how", sorted(HOSTILE))
def test_the_audit_writes_nothing_into_what_it_audits(run: Path, how: str) -> None:
    HOSTILE[how](run)
    before = tree_state(run)
    try:
        report: AuditReport | None = audit_run_dir(run, ())
    except (LedgerError, ConfigError):
        report = None
    assert tree_state(run) == before
    assert (report is not None) == (how in ("clean", "table meta dropped"))


def test_a_pruned_run_keeps_the_evidence_behind_every_accusation(tmp_path: Path, tiny_data: Dataset) -> None:
    run_dir = tmp_path / "run"
    with Session(small_config(rounds=ROUNDS, **ATTACKED), dataset=tiny_data, run_dir=run_dir,
                 keep_objects=False) as session:
        session.train()
        kept = set(session.store.cids())
        state = session.node.state
    evidence = accused_cids(run_dir)
    assert evidence and set(evidence) <= kept
    assert kept == {state.gate_cid, *state.expert_cids, *evidence}  # everything else was pruned


def test_a_recorded_head_erased_from_metrics_json_is_a_fault_not_a_missing_anchor(run: Path) -> None:
    rows = read_rows(run / "chain.sqlite")
    write_rows(run / "chain.sqlite", rows[:-1])  # type: ignore[arg-type]
    body = json.loads((run / "metrics.json").read_text())
    body["summary"]["head_hash"] = None
    (run / "metrics.json").write_text(json.dumps(body))
    fails(run, "metrics.json", "not a block hash")


def test_the_report_says_which_anchors_were_absent(run: Path) -> None:
    assert audit_run_dir(run, ()).unanchored == []
    (run / "metrics.json").unlink()
    (run / "config.json").unlink()
    assert audit_run_dir(run, ()).unanchored == ["config.json absent", "metrics.json absent"]
