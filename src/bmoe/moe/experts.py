"""Expert networks: the paper's MLP and CNN presets, the integer MLP, and the spec that rebuilds any expert.

An expert is any ``nn.Module`` mapping a batch of inputs ``(B, *input_shape)`` to logits
``(B, num_classes)``. Edges receive experts as bytes (safetensors) plus an :class:`ExpertSpec`
naming the architecture, so they can rebuild the module and load the weights. The ``mlp-int``
preset computes in exact integer arithmetic (``moe/fixed_point.py``), so honest edges agree bit for
bit on any hardware; :data:`INTEGER_PRESETS` names such presets.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from bmoe.moe.fixed_point import IntegerMLPExpert
from bmoe.moe.presets import INTEGER_PRESETS as INTEGER_PRESETS
from bmoe.moe.presets import PRESETS

ExpertFactory = Callable[[], nn.Module]


class MLPExpert(nn.Module):
    """Two fully connected layers with ReLU (paper, Sec. V: 256 hidden units)."""

    def __init__(self, input_dim: int, num_classes: int, hidden: int = 256) -> None:
        super().__init__()
        self.fc1 = nn.Linear(input_dim, hidden)
        self.fc2 = nn.Linear(hidden, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.fc1(x.flatten(1)))  # (B, hidden)
        return self.fc2(h)  # (B, num_classes)


class CNNExpert(nn.Module):
    """Three convolutional layers and two fully connected layers (paper, Sec. V, CIFAR-10)."""

    def __init__(self, input_shape: tuple[int, int, int], num_classes: int, width: int = 32) -> None:
        super().__init__()
        channels, height, width_px = input_shape
        self.conv1 = nn.Conv2d(channels, width, 3, padding=1)
        self.conv2 = nn.Conv2d(width, 2 * width, 3, padding=1)
        self.conv3 = nn.Conv2d(2 * width, 2 * width, 3, padding=1)
        pooled = (height // 8) * (width_px // 8) if min(height, width_px) >= 8 else 1
        self.fc1 = nn.Linear(2 * width * pooled, 128)
        self.fc2 = nn.Linear(128, num_classes)
        self._pool_to_one = min(height, width_px) < 8

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.max_pool2d(torch.relu(self.conv1(x)), 2, ceil_mode=True)  # (B, w, H/2, W/2)
        h = torch.max_pool2d(torch.relu(self.conv2(h)), 2, ceil_mode=True)  # (B, 2w, H/4, W/4)
        h = torch.relu(self.conv3(h))
        h = torch.amax(h, dim=(2, 3)) if self._pool_to_one else torch.max_pool2d(h, 2)  # (B, 2w, ...)
        return self.fc2(torch.relu(self.fc1(h.flatten(1))))  # (B, num_classes)




@dataclass(frozen=True)
class ExpertSpec:
    """What an edge needs to rebuild an expert before loading its weights."""

    preset: str  # "mlp", "cnn", "mlp-int", or a user-chosen name for a custom factory
    input_shape: tuple[int, ...]
    num_classes: int
    hidden: int = 256  # paper, Sec. V: MLP hidden width

    def to_dict(self) -> dict[str, object]:
        return {
            "preset": self.preset,
            "input_shape": list(self.input_shape),
            "num_classes": self.num_classes,
            "hidden": self.hidden,
        }


def build_expert(spec: ExpertSpec, factory: ExpertFactory | None = None) -> nn.Module:
    """Build an untrained expert for ``spec``; a custom preset needs its ``factory``."""
    if factory is not None:
        return factory()
    input_dim = 1
    for size in spec.input_shape:
        input_dim *= size
    if spec.preset == "mlp":
        return MLPExpert(input_dim, spec.num_classes, spec.hidden)
    if spec.preset == "mlp-int":  # the mlp's initial weights, rounded to fixed point
        return IntegerMLPExpert(MLPExpert(input_dim, spec.num_classes, spec.hidden))
    if spec.preset == "cnn":
        if len(spec.input_shape) != 3:
            raise ValueError(f"cnn experts need (C, H, W) inputs, got shape {spec.input_shape}")
        shape = (spec.input_shape[0], spec.input_shape[1], spec.input_shape[2])
        return CNNExpert(shape, spec.num_classes)
    raise ValueError(f"unknown expert preset {spec.preset!r}; choose one of {PRESETS} or pass a factory")
