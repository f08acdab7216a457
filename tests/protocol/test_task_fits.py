"""A task must fit the run's model: float32 samples of the genesis's input shape and labels in range.
Through the Python API a misfit is a PayloadError before anything is recorded, and the next task seals."""

from __future__ import annotations

import pytest
import torch

from bmoe.data import Dataset
from bmoe.moe.payloads import PayloadError
from bmoe.protocol.round import publish_task
from bmoe.run.session import Session
from tests.conftest import small_config


def misfits(data: Dataset) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    x, y = data.x_train[:16], data.y_train[:16]
    return {"float64 samples": (x.double(), y), "flattened samples": (x.reshape(16, -1), y),
            "integer samples": (x.long(), y), "a label past the classes": (x, torch.full_like(y, data.num_classes)),
            "a negative label": (x, torch.full_like(y, -1))}


@pytest.mark.parametrize("name", ["float64 samples", "flattened samples", "integer samples", "a label past the classes",
                                  "a negative label"])
def test_a_task_that_does_not_fit_the_model_is_refused_before_anything_is_recorded(tiny_data: Dataset,
                                                                                   name: str) -> None:
    with Session(small_config(), dataset=tiny_data) as session:
        session.train(rounds=1)
        height, nonces = session.node.state.height, dict(session.node.state.nonces)
        x, y = misfits(tiny_data)[name]
        with pytest.raises(PayloadError):
            if name.startswith("a ") and "label" in name:
                session.run_published(publish_task(session.publisher, session.store, 5, x, y, True))
            else:
                session.infer(x)
        assert session.node.state.height == height and not session.node.pending
        assert session.node.state.nonces == nonces
        session.publisher.next_nonce = nonces.get(session.publisher.address, -1) + 1
        session.infer(tiny_data.x_test[:8])
        assert session.node.state.height == height + 1
