"""A declaration concerns only the edge that made it: under exact comparison an honest edge declaring numerics
other than the run configures for it is excluded (left out of work items, recorded absent by the round, named
in ``/stats``), and the validator goes on sealing tasks with the rest of the fleet; declaring what fits
includes it again. Served over signed HTTP in this process."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bmoe.data import Dataset
from bmoe.edge.profiles import get_profile
from bmoe.ledger.node import Signer
from bmoe.net.fleet_check import misdeclared, numerics_of
from bmoe.net.http.auth import SignedAuth
from bmoe.net.publish.command import ValidatorClient
from bmoe.protocol.round import publish_task
from bmoe.run.session import Session
from tests.conftest import small_config
from tests.net.test_net_network_edges import validator_serving

CONFIG = small_config(malicious_ratio=0.0, threads=1)


@pytest.fixture(scope="module")
def validator(tiny_data: Dataset, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Session]]:
    with validator_serving(CONFIG, tiny_data, Path(tmp_path_factory.mktemp("declared")) / "run",
                           edge_timeout=20.0) as served:  # an edge waited for would make a round take this long
        yield served


def declare(url: str, session: Session, index: int, profile: str) -> None:
    """Edge ``index`` polls ``GET /work`` declaring ``profile`` under the run's thread count."""
    identity = session.ids.edges[index]
    query = {"after": "-1", "wait": "0", "profile": profile,
             "numerics": numerics_of(get_profile(profile), CONFIG.threads)}
    with httpx.Client(auth=SignedAuth(identity, [session.ids.validator.address]), timeout=30) as client:
        assert client.get(f"{url}/work", params=query).status_code == 200


def seal_one(url: str, session: Session, tiny_data: Dataset, number: int) -> dict[str, object]:
    ids = session.ids
    publisher = Signer(ids.publisher, session.node.next_nonce(ids.publisher.address))
    task = publish_task(publisher, session.store, number, tiny_data.x_train[:32], tiny_data.y_train[:32], True)
    with ValidatorClient(url, ids.publisher, ids.validator.address) as client:
        client.submit(task)
        return client.wait_sealed(task.payload["task_id"], timeout=15)


def stats(url: str, session: Session) -> dict[str, object]:
    auth = SignedAuth(session.ids.publisher, [session.ids.validator.address])
    with httpx.Client(auth=auth, timeout=30) as client:
        return dict(client.get(f"{url}/stats").json())


def test_a_misdeclared_edge_is_excluded_and_the_fleet_goes_on_until_it_declares_what_fits(
        validator: tuple[str, Session], tiny_data: Dataset) -> None:
    url, session = validator
    edge = session.ids.edges[1].address
    declare(url, session, 1, "f64")
    listed = stats(url, session)
    assert list(listed["excluded_edges"]) == ["edge-1"]  # type: ignore[call-overload]
    assert "declares profile f64" in listed["excluded_edges"]["edge-1"]  # type: ignore[index]
    assert listed["edges"] == {"excluded": 1}
    sealed = seal_one(url, session, tiny_data, 1)
    assert sealed["status"] == "sealed", sealed
    records = session.node.view().edge_records
    assert records[edge].withheld >= 1  # recorded: the round saw it absent
    others = [e.address for i, e in enumerate(session.ids.edges) if i != 1]
    assert all(records[e].dissent == 0 and records[e].withheld == 0 for e in others)
    withheld = records[edge].withheld
    declare(url, session, 1, "threads1")  # under --threads 1 the same numerics as the configured default
    assert stats(url, session)["excluded_edges"] == {}
    assert seal_one(url, session, tiny_data, 2)["status"] == "sealed"
    assert session.node.view().edge_records[edge].withheld == withheld  # it takes part again


def test_only_an_honest_edge_computing_otherwise_than_configured_is_misdeclared() -> None:
    f64 = numerics_of(get_profile("f64"), 1)
    assert "restart it with --profile default" in str(misdeclared(CONFIG, 1, "f64", f64))
    assert misdeclared(CONFIG, 1, "threads1", numerics_of(get_profile("threads1"), 1)) is None
    assert misdeclared(CONFIG.replace(comparison="tolerance"), 1, "f64", f64) is None
    attacked = CONFIG.replace(malicious_ratio=0.4)
    assert misdeclared(attacked, 4, "f64", f64) is None  # the last edges attack: their bytes differ anyway
