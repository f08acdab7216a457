"""Shared fixtures: a small synthetic dataset and small run configs that keep tests fast; the tiers' plugin
(tests/tiers.py: markers by what a test uses, the fast tier's time guard)."""

from __future__ import annotations

import pytest

from bmoe.data import Dataset, make_synthetic
from bmoe.run.config import RunConfig

pytest_plugins = ("tests.tiers",)


@pytest.fixture(scope="session")
def tiny_data() -> Dataset:
    return make_synthetic(n_train=256, n_test=64, num_classes=4, shape=(1, 6, 6), seed=3)


def small_config(**changes: object) -> RunConfig:
    """N=4 experts, K=2, M=5 edges, 32-sample tasks, hidden 16: a round takes milliseconds."""
    base = RunConfig(dataset="synthetic", num_experts=4, top_k=2, num_edges=5, hidden=16, rounds=4,
                     batch_size=32, lr=0.2, eval_every=100, difficulty=4, seed=11)
    return base.replace(**changes)
