"""The Fig. 4b latency model, and CIFAR-10 wired end to end (CNN experts, lr 0.1) on files generated in
the official python-pickle format."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from bmoe.data import load_dataset, write_cifar10_batches
from bmoe.experiments.reproduction.latency import mean_latency, round_latency
from bmoe.experiments.reproduction.settings import LatencyModel, ReproSettings
from bmoe.run.session import Session
from tests.cli.in_process import bmoe_here as bmoe

TIMING = {"time_gate": 0.01, "time_verify": 0.02, "time_loss": 0.03, "time_consensus": 0.004, "time_mine": 0.003,
          "time_edge": 0.5, "bytes_max_edge": 12_500_000}


def test_latency_components_are_measured_and_modelled() -> None:
    model = LatencyModel(bandwidth_mbps=100.0, block_interval_s=1.0)
    bmoe_parts = round_latency(TIMING, "bmoe", model)
    assert bmoe_parts["communication"] == 1.0  # 100 Mbit at 100 Mbit/s
    assert bmoe_parts["consensus"] == 1.003
    assert abs(bmoe_parts["server / validators"] - 0.06) < 1e-12
    traditional = round_latency(TIMING, "traditional", model)
    assert traditional["consensus"] == 0.0
    assert abs(traditional["server / validators"] - 0.064) < 1e-12
    assert mean_latency([TIMING, {**TIMING, "time_edge": 1.5}], "bmoe", model)["edge compute"] == 1.0


def tiny_cifar(directory: Path) -> None:
    rng = np.random.default_rng(0)
    x_train = rng.integers(0, 256, size=(100, 3, 32, 32), dtype=np.uint8)
    x_test = rng.integers(0, 256, size=(20, 3, 32, 32), dtype=np.uint8)
    write_cifar10_batches(directory, x_train, rng.integers(0, 10, 100), x_test, rng.integers(0, 10, 20))


def test_cifar10_trains_with_cnn_experts_at_the_papers_lr(tmp_path: Path) -> None:
    tiny_cifar(tmp_path / "cifar")
    settings = ReproSettings(dataset="cifar10", data_dir=str(tmp_path / "cifar"))
    config = settings.base_config()
    assert (config.expert, config.lr) == ("cnn", 0.1)
    data = load_dataset("cifar10", tmp_path / "cifar")
    assert data.input_shape == (3, 32, 32)
    session = Session(config.replace(rounds=2, batch_size=20, num_edges=4, malicious_ratio=0.25), dataset=data)
    outcomes = session.train()
    assert all(o.loss is not None and torch.isfinite(torch.tensor(o.loss)) for o in outcomes)
    assert session.node.state.expert_cids != session.node.state.genesis["expert_cids"]


def test_cifar10_from_the_command_line(tmp_path: Path) -> None:
    tiny_cifar(tmp_path / "cifar")
    result = bmoe("train", "--run-dir", tmp_path / "run", "--dataset", "cifar10", "--data-dir", tmp_path / "cifar",
                  "--expert", "cnn", "--lr", "0.1", "--rounds", "2", "--batch-size", "20", "--edges", "4",
                  "--difficulty", "4")
    assert result.returncode == 0, result.stderr
    assert bmoe("audit", tmp_path / "run").returncode == 0
