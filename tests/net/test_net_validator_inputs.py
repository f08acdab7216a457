"""The validator service's door, served over signed HTTP in this process: task data holding NaN or inf,
or not fitting the model (dtype, sample shape, labels), is refused before it is queued (nothing recorded, no
edge accused, nothing sealed), a deeply nested body is a 400 ``json_too_deep``, both are counted, and the
next honest task is sealed as usual."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import torch

from bmoe.data import Dataset
from bmoe.ledger.node import Signer
from bmoe.ledger.transactions import tx_to_dict
from bmoe.net.http.auth import SignedAuth
from bmoe.net.publish.command import ValidatorClient
from bmoe.protocol.round import publish_task
from bmoe.run.session import Session
from bmoe.storage import serialize_tensors
from tests.conftest import small_config
from tests.net.test_net_network_edges import SETTINGS, validator_serving

POISONS = {"nan": float("nan"), "inf": float("inf"), "-inf": float("-inf")}


@pytest.fixture(scope="module")
def validator(tiny_data: Dataset, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Session]]:
    """A validator service (PoW, one validator) with network edges answering in threads; its URL and Session."""
    config = small_config(**SETTINGS)
    with validator_serving(config, tiny_data, Path(tmp_path_factory.mktemp("validator")) / "run",
                           edge_timeout=10.0) as served:
        yield served


def stats(client: httpx.Client, url: str) -> dict[str, int]:
    return dict(client.get(f"{url}/stats").json().get("errors", {}))


def head(client: httpx.Client, url: str) -> tuple[object, ...]:
    body = client.get(f"{url}/head").json()
    return body["height"], body["head_hash"], body["gate_cid"], body["edge_records"]


def post_task(client: httpx.Client, url: str, session: Session, x: torch.Tensor, y: torch.Tensor,
              number: int) -> httpx.Response:
    """Store ``x, y`` as they are (no encoder check) and POST a signed 32-sample training task naming them."""
    cid = session.store.put(serialize_tensors({"x": x.contiguous(), "y": y.contiguous()}))
    publisher = Signer(session.ids.publisher, session.node.next_nonce(session.ids.publisher.address))
    task = publisher.sign("task", {"task_id": f"train-{number:06d}", "kind": "train", "data_cid": cid,
                                   "samples": 32, "round": number})
    return client.post(f"{url}/tasks", json=tx_to_dict(task))


def test_non_finite_task_data_and_deep_json_are_refused_and_the_next_task_seals(validator, tiny_data) -> None:  # type: ignore[no-untyped-def]
    url, session = validator
    ids = session.ids
    x, y = tiny_data.x_train[:32], tiny_data.y_train[:32]
    auth = SignedAuth(ids.publisher, [ids.validator.address])
    with httpx.Client(auth=auth, timeout=30) as client:
        before, errors = head(client, url), stats(client, url)
        for seed, (name, value) in enumerate(POISONS.items()):
            bad = x.clone()
            generator = torch.Generator().manual_seed(seed)
            bad.view(-1)[int(torch.randint(bad.numel(), (1,), generator=generator))] = value
            reply = post_task(client, url, session, bad, y, 900 + seed)
            assert (reply.status_code, reply.json()["reason"]) == (400, "bad_task_data"), (name, reply.text)
            assert "non-finite" in reply.json()["error"]
        misfits = {"float64 samples": (x.double(), y), "another sample shape": (x.reshape(32, -1), y),
                    "a label past the classes": (x, torch.full_like(y, tiny_data.num_classes)),
                    "a negative label": (x, torch.full_like(y, -1))}
        for index, (name, (bad_x, bad_y)) in enumerate(misfits.items()):
            reply = post_task(client, url, session, bad_x, bad_y, 950 + index)
            assert (reply.status_code, reply.json()["reason"]) == (400, "bad_task_data"), (name, reply.text)
        nonce = session.node.next_nonce(ids.publisher.address)
        eight = publish_task(Signer(ids.publisher, nonce), session.store, 7, x[:8], y[:8], True)
        mismatch = Signer(ids.publisher, nonce).sign("task", {**eight.payload, "samples": 9})  # declares 9, holds 8
        assert client.post(f"{url}/tasks", json=tx_to_dict(mismatch)).json()["reason"] == "bad_task_data"
        deep = b"[" * 200_000 + b"]" * 200_000
        reply = client.post(f"{url}/tasks", content=deep)
        assert (reply.status_code, reply.json()["reason"]) == (400, "json_too_deep")
        assert head(client, url) == before  # nothing recorded, nobody accused, nothing sealed
        counted = stats(client, url)
        assert counted.get("bad_task_data", 0) - errors.get("bad_task_data", 0) == 4 + len(misfits)
        assert counted.get("json_too_deep", 0) - errors.get("json_too_deep", 0) == 1
    publisher = Signer(ids.publisher, session.node.next_nonce(ids.publisher.address))
    honest = publish_task(publisher, session.store, 1, x, y, True)
    with ValidatorClient(url, ids.publisher, ids.validator.address) as validator_client:
        validator_client.submit(honest)
        sealed = validator_client.wait_sealed(honest.payload["task_id"], timeout=60)
    assert sealed["status"] == "sealed" and sealed["height"] == before[0] + 1
    records = session.node.view().edge_records
    honest_edges = [edge.address for edge in session.ids.edges[:3]]  # SETTINGS: the last 2 of 5 attack
    assert all(records[edge].dissent == 0 and records[edge].withheld == 0 for edge in honest_edges)
