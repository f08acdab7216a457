"""A language model's run sealed by PBFT among validators that replay every proposed block
(``protocol/lm/reexecute.py``): the same model as under proof of work, a Byzantine primary voted out with nothing
changed, one head hash per seed, a run directory ``bmoe audit`` passes, too few validators refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from bmoe.ledger.blocks import Block
from bmoe.ledger.chainstore import ChainStore
from bmoe.ledger.errors import InvalidBlock
from bmoe.ledger.state import LedgerState, apply_block
from bmoe.protocol import pbft_sealing
from bmoe.protocol.lm.reexecute import LMReexecutor
from bmoe.protocol.lm.round import lm_task, run_lm_round
from bmoe.run.audit import audit_run_dir
from bmoe.run.lm.session import CHAIN_FILE, LMSession
from tests.cli.helpers import assert_user_error
from tests.cli.in_process import bmoe_here
from tests.lm.lm_runs import tiny_session

STEPS = 2
PBFT = {"consensus": "pbft", "validators": 4}


def _trained(run_dir: Path | None = None, **run: object) -> LMSession:
    session = tiny_session(lm={"steps": STEPS}, run_dir=run_dir, **run)
    session.train()
    session.close()
    return session


def _model(session: LMSession) -> tuple[str, list[str]]:
    state = session.node.view()
    return state.gate_cid, list(state.expert_cids)


def _blocks(run_dir: Path) -> list[Block]:
    with ChainStore(run_dir / CHAIN_FILE) as chain:
        return list(chain.iter_blocks())


@pytest.fixture(scope="module")
def honest(tmp_path_factory: pytest.TempPathFactory) -> tuple[LMSession, list[Block]]:
    run_dir = tmp_path_factory.mktemp("pbft") / "run"
    return _trained(run_dir, **PBFT), _blocks(run_dir)


def test_honest_pbft_trains_the_same_model_as_pow_and_its_chain_differs_in_the_seals(
        honest: tuple[LMSession, list[Block]], tmp_path: Path) -> None:
    pbft, pbft_blocks = honest
    pow_run = _trained(tmp_path / "pow")
    pow_blocks = _blocks(tmp_path / "pow")
    assert _model(pbft) == _model(pow_run)
    assert pbft.pbft is not None and pbft.pbft.view_changes == 0
    assert len(pbft_blocks) == len(pow_blocks) == 1 + STEPS * 2 * 2  # the genesis, then a block per task
    # the genesis differs (the engine, the four validators, the settings' hash); every later block holds the same
    # transactions, sealed by a commit certificate instead of proof of work
    assert pbft_blocks[0].transactions != pow_blocks[0].transactions
    for pbft_block, pow_block in zip(pbft_blocks[1:], pow_blocks[1:], strict=True):
        assert pbft_block.transactions == pow_block.transactions
        assert (pbft_block.header.consensus, pow_block.header.consensus) == ("pbft", "pow")
        assert pbft_block.certificate is not None and pow_block.certificate is None


@pytest.mark.parametrize("attack", ["tamper", "silent", "equivocate", "garbage", "replay"])
def test_a_byzantine_validator_of_four_changes_nothing_the_run_trains(
        attack: str, honest: tuple[LMSession, list[Block]]) -> None:
    session = _trained(**PBFT, byzantine_validators=1, validator_attack=attack)
    assert _model(session) == _model(honest[0])
    assert session.pbft is not None and "validator-0" in session.pbft.byzantine  # the first primary
    if attack in ("tamper", "silent"):  # the primary that builds a wrong block, or none, is voted out at once
        assert session.pbft.view_changes == 1 and session.pbft.primary() == "validator-1"


def test_a_tampering_primarys_block_gets_no_prepare_and_the_new_primary_builds_every_block(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    judged: list[tuple[int, int, str | None]] = []  # (which view, height, its refusal) of each proposal, in order
    validate = pbft_sealing._ValidatorView.validate

    def recorded(view: pbft_sealing._ValidatorView, height: int, payload: bytes) -> str | None:
        judged.append((id(view), height, validate(view, height, payload)))
        return judged[-1][2]
    monkeypatch.setattr(pbft_sealing._ValidatorView, "validate", recorded)
    session = _trained(tmp_path / "run", **PBFT, byzantine_validators=1, validator_attack="tamper")
    refusals = [(view, height, reason) for view, height, reason in judged if reason is not None]
    assert len({view for view, _, _ in refusals}) == 3  # every honest validator refused
    assert {height for _, height, _ in refusals} == {1}  # the first proposal only
    assert all("(acceptance): output_cid" in reason for _, _, reason in refusals)  # the replayed aggregate differs
    second = session.ids.validators[1].address
    assert all(block.header.proposer == second for block in _blocks(tmp_path / "run")[1:])


def test_the_same_seeded_pbft_run_gives_the_same_head_hash() -> None:
    first = _trained(**PBFT, byzantine_validators=1)
    second = _trained(**PBFT, byzantine_validators=1)
    assert first.head_hash() == second.head_hash()


def test_bmoe_audit_passes_a_pbft_run_with_a_byzantine_primary(tmp_path: Path) -> None:
    session = _trained(tmp_path / "run", **PBFT, byzantine_validators=1)
    report = audit_run_dir(tmp_path / "run", ())
    assert report.head_hash == session.head_hash()
    assert report.pbft_blocks == STEPS * 2 * 2  # every block after the mined genesis, by its commit certificate


def _round_task(block: Block) -> tuple[str, int]:
    task = next(lm_task(tx.payload["task_id"]) for tx in block.transactions if tx.kind == "task")
    assert task is not None
    return task[2], task[3]


def test_a_validator_judges_a_proposal_from_its_head_after_judging_one_that_was_not_sealed(
        honest: tuple[LMSession, list[Block]]) -> None:
    session, blocks = honest
    states = [apply_block(LedgerState(), blocks[0])]
    for block in blocks[1:]:
        states.append(apply_block(states[-1], block))
    assert [_round_task(block) for block in blocks[1:5]] == [("f", 0), ("f", 1), ("b", 1), ("b", 0)]
    replica = LMReexecutor(session.store, session.config.lm.lr)
    for height in (1, 2, 3):
        replica.check(states[height - 1], blocks[height])
    # the proposal at height 3 was judged; another one for height 3 comes, on the head at 2: the replay goes back to
    # the round's first block and replays it and block 2 again before it
    assert replica.check(states[2], blocks[3]).head == states[3].head
    assert replica.check(states[3], blocks[4]).head == states[4].head  # the round's last task, its trusted step
    fresh = LMReexecutor(session.store, session.config.lm.lr)  # one that never saw the round's first blocks
    with pytest.raises(InvalidBlock, match="out of order"):
        fresh.check(states[2], blocks[3])


def test_a_replica_with_another_learning_rate_refuses_the_round_s_last_block(
        honest: tuple[LMSession, list[Block]]) -> None:
    session, blocks = honest
    replica = LMReexecutor(session.store, lambda step: 0.5)
    state = apply_block(LedgerState(), blocks[0])
    for block in blocks[1:4]:
        state = replica.check(state, block)
    with pytest.raises(InvalidBlock, match="gate_cid"):
        replica.check(state, blocks[4])


def test_pbft_with_three_validators_is_refused_in_one_line(tmp_path: Path) -> None:
    result = bmoe_here("lm", "train", "--run-dir", tmp_path / "run", "--consensus", "pbft", "--validators", "3")
    assert_user_error(result, "--validators 4 or more", "got 3")
    assert not (tmp_path / "run").exists()



@pytest.fixture(scope="module")
def one_round() -> LMSession:
    session = tiny_session(lm={"steps": 1}, **PBFT)
    session.train()
    return session


@pytest.mark.parametrize("cut_after", [1, 2, 3])  # blocks sealed; then forward layer 1, backward 1, backward 0
def test_a_task_whose_primary_is_cut_off_is_rebuilt_by_the_next_and_the_round_trains_the_same(
        cut_after: int, one_round: LMSession) -> None:
    session = tiny_session(lm={"steps": 1}, **PBFT)
    assert session.pbft is not None
    sim, delay = session.pbft.sim, session.config.run.message_delay

    def sealed() -> None:  # validator-0, the primary, loses the network for long enough to be voted out
        if session.node.view().height == cut_after:
            sim.partition(["validator-0"])
            sim.heal(at=sim.now + 60 * delay)
    tokens, targets = session.batch(session.train_ids, 0, 0)
    run_lm_round(session.participants, session.validator, 0, tokens, targets, True, session.lr(0), on_sealed=sealed)
    assert session.pbft.view_changes == 1 and session.pbft.primary() == "validator-1"
    assert _model(session) == _model(one_round)
    assert session.node.view().height == 4
