"""Validators on other hardware: a replica re-executing with other numerics (float64 accumulation,
rows in chunks) computes gate, aggregation and gate update with other last bits. Under ``exact`` it
refuses the proposer's blocks, splitting the validators; under ``tolerance`` it checks the recorded
activation, output, loss, gate and gradients within the bound and accepts every honest block, while a
recorded routing outside the bound is still refused."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from bmoe.data import Dataset, load_dataset
from bmoe.edge.profiles import get_profile
from bmoe.experiments.runs import train_run
from bmoe.ledger.blocks import Block
from bmoe.ledger.chainstore import ChainStore
from bmoe.ledger.errors import InvalidBlock
from bmoe.ledger.state import LedgerState, apply_block
from bmoe.protocol.comparisons.tolerance import activation_error
from bmoe.protocol.reexecute import Reexecutor
from bmoe.run.config import RunConfig
from bmoe.run.session import CHAIN_FILE, STORE_DIR, Session
from bmoe.storage import DirectoryStore
from bmoe.verify.comparison import Tolerance

CONFIG = RunConfig(dataset="digits", num_experts=6, top_k=2, num_edges=5, hidden=32, rounds=4, batch_size=100,
                   eval_every=1000, seed=5, malicious_ratio=0.2, attack_params={"probability": 1.0})


@pytest.fixture(scope="module")
def digits() -> Dataset:
    return load_dataset("digits", seed=0)


def chain_of(root: Path, data: Dataset, config: RunConfig) -> tuple[list[Block], DirectoryStore]:
    run_dir = root / config.comparison
    with Session(config, dataset=data, run_dir=run_dir) as session:
        train_run(config, run_dir, session=session)
        session.infer(data.x_test[:100])
    chain = ChainStore(run_dir / CHAIN_FILE, readonly=True)
    blocks = list(chain.iter_blocks())
    chain.close()
    return blocks, DirectoryStore(run_dir / STORE_DIR, create=False)


def replay(blocks: list[Block], store: DirectoryStore, data: Dataset, profile: str) -> LedgerState:
    replica = Reexecutor(store, data.input_dim, data.num_classes, get_profile(profile))
    state = apply_block(LedgerState(), blocks[0])
    for block in blocks[1:]:
        state = replica.check(state, block)
    return state


@pytest.mark.parametrize("profile", ["f64", "chunked"])
def test_a_replica_on_other_numerics_splits_from_an_exact_chain_and_agrees_under_tolerance(
        tmp_path: Path, digits: Dataset, profile: str) -> None:
    exact_blocks, exact_store = chain_of(tmp_path, digits, CONFIG)
    replay(exact_blocks, exact_store, digits, "default")  # the proposer's own numerics agree
    with pytest.raises(InvalidBlock, match="differs from the re-executed value"):  # activation or gate bytes
        replay(exact_blocks, exact_store, digits, profile)

    blocks, store = chain_of(tmp_path, digits, CONFIG.replace(comparison="tolerance"))
    assert replay(blocks, store, digits, profile).height == len(blocks) - 1


def test_a_near_tie_within_the_bound_is_accepted_and_a_choice_beyond_it_is_not() -> None:
    comparison = Tolerance(result_bound=1e-4)
    logits = torch.tensor([[3.0, 1.0, 1.0 - 1e-6, -2.0]])  # (1, 4): experts 1 and 2 tie within the bound
    for chosen in ([0, 1], [0, 2]):
        experts = torch.tensor([chosen])
        weights = torch.softmax(logits.gather(1, experts), dim=1)
        assert activation_error(experts, weights, logits, comparison) is None
    far = torch.tensor([[0, 3]])
    assert "not a top-2" in str(activation_error(far, torch.softmax(logits.gather(1, far), dim=1), logits, comparison))
    assert "routing weights" in str(activation_error(torch.tensor([[0, 1]]), torch.tensor([[0.5, 0.5]]), logits,
                                                     comparison))
    assert "twice" in str(activation_error(torch.tensor([[0, 0]]), torch.tensor([[0.5, 0.5]]), logits, comparison))
