"""Whether a run's settings fit its dataset and this machine, checked before anything is written.

Owns the checks that need the data: a batch no larger than the training split, size limits no larger
than the splits they cut, a CNN only on (C, H, W) images, and a rough estimate of the memory a round
holds compared with this machine's. Each failure is a one-line ``ConfigError`` naming the setting.

Must not know: the disk, the ledger.
"""

from __future__ import annotations

import os
from pathlib import Path

from bmoe.data import Dataset
from bmoe.data.registry import apply_limits, load_dataset
from bmoe.run.config import ConfigError, RunConfig

GIB = 2**30
# A round holds every expert's weights several times over (the store's bytes, the edges' decoded
# copies, gradients, updates) and a batch's activations per expert for forward and backward.
WEIGHT_COPIES = 6
ACTIVATION_COPIES = 4


def load_run_dataset(config: RunConfig) -> Dataset:
    """The config's dataset, refusing a ``limit_train``/``limit_test`` larger than the split it cuts."""
    full = load_dataset(config.dataset, None if config.data_dir is None else Path(config.data_dir), config.seed)
    for name, limit, available in (("limit_train", config.limit_train, full.num_train),
                                   ("limit_test", config.limit_test, full.num_test)):
        if limit is not None and limit > available:
            raise ConfigError(f"{name}={limit} is more than the {available} samples of {full.name}'s "
                              f"{name.removeprefix('limit_')} split")
    return apply_limits(full, config.seed, config.limit_train, config.limit_test)


def check_fits(config: RunConfig, dataset: Dataset, custom_experts: bool = False) -> None:
    """Refuse settings the dataset cannot serve or this machine cannot hold.

    A dataset with no training samples is a deployment validator's shape-only stand-in: its tasks come
    from a publisher, which checks the batch against its own data.
    """
    if dataset.num_train and config.batch_size > dataset.num_train:
        raise ConfigError(f"batch_size={config.batch_size} is larger than the {dataset.num_train} training "
                          f"samples of {dataset.name}")
    if config.expert == "cnn" and not custom_experts and len(dataset.input_shape) != 3:
        raise ConfigError(f"expert 'cnn' needs (C, H, W) images; {dataset.name} has inputs of shape "
                          f"{dataset.input_shape}")
    need = estimated_bytes(config, dataset, custom_experts)
    have = physical_memory()
    if have is not None and need > have:
        raise ConfigError(f"N={config.num_experts} experts (hidden={config.hidden}) on batches of "
                          f"{config.batch_size} need about {need / GIB:.1f} GiB, more than this machine's "
                          f"{have / GIB:.1f} GiB; use fewer or smaller experts or smaller batches")


def expert_parameters(config: RunConfig, input_shape: tuple[int, ...], classes: int) -> int:
    """Parameters of one preset expert, counted without building it (moe/experts.py's layers)."""
    if config.expert == "cnn" and len(input_shape) == 3:
        channels, height, width = input_shape
        pooled = (height // 8) * (width // 8) if min(height, width) >= 8 else 1
        w = 32
        return (channels * w * 9 + w) + (w * 2 * w * 9 + 2 * w) + (2 * w * 2 * w * 9 + 2 * w) \
            + (2 * w * pooled * 128 + 128) + (128 * classes + classes)
    inputs = 1
    for size in input_shape:
        inputs *= size
    return inputs * config.hidden + config.hidden + config.hidden * classes + classes


def estimated_bytes(config: RunConfig, dataset: Dataset, custom_experts: bool = False) -> int:
    """A rough upper estimate of the float32 bytes one round holds (weights and activations)."""
    shape, classes = tuple(dataset.input_shape), dataset.num_classes
    params = 0 if custom_experts else expert_parameters(config, shape, classes)
    weights = config.num_experts * params * WEIGHT_COPIES
    width = config.hidden + classes
    activations = config.batch_size * (dataset.input_dim + config.num_experts * width) * ACTIVATION_COPIES
    results = config.num_edges * config.num_experts * config.batch_size * classes  # every edge's results
    return 4 * (weights + activations + results)


def physical_memory() -> int | None:
    """This machine's RAM in bytes, or None where the OS does not say."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None
