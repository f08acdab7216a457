"""A Byzantine primary over HTTP: honest validator processes refuse each forged proposal and name why.

Seven PBFT validator processes (f = 2). The test holds validator-0's key (the cluster's key file; view 0's
primary) and, speaking PBFT to the backups' ``POST /consensus`` as validator-0, pre-prepares at height 1
the block an honest primary would propose (computed by an in-process run of the same settings, its objects
uploaded to the cluster's stores), forged one way for each backup: a transaction with a zeroed or a foreign signature, a
wrong Merkle root, a transaction from an unenrolled key, a block re-signed by a non-validator. Each
backup judges it by the ledger's one check-then-apply and refuses it; ``GET /stats`` shows the reason
(``pbft.refused``). One pre-prepare per backup: a second one in the same view and height is an
equivocation, refused before it is judged.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from bmoe.consensus.pbft_messages import DOMAIN, PRE_PREPARE, encode_vote, sign_vote
from bmoe.consensus.wire import SignatureChecker
from bmoe.ledger.blocks import proposal_bytes
from bmoe.ledger.chainstore import ChainStore
from bmoe.ledger.encoding import sha256_hex
from bmoe.net.http.auth import SignedAuth
from bmoe.net.store.client import HttpBlobStore
from bmoe.run.session import Session
from tests.net.deploy import LocalCluster, cluster_data, pbft_cluster
from tests.protocol.forged_blocks import FORGERIES

EDGE_TIMEOUT_S = 6.0


@pytest.fixture(scope="module")
def seven(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    yield from pbft_cluster(tmp_path_factory, 7, EDGE_TIMEOUT_S)


def honest_first_block(cluster: LocalCluster, run_dir: object) -> bytes:
    """Block 1 as the cluster's honest primary would propose it; its objects put on the cluster's stores."""
    with Session(cluster.config, dataset=cluster_data(cluster), run_dir=run_dir,  # type: ignore[arg-type]
                 identities=cluster.identities()) as session:
        session.train(rounds=1)
        with HttpBlobStore(cluster.description.stores, cluster.publisher) as stores:
            for cid in session.store.cids():
                stores.put(session.store.get(cid))
    with ChainStore(run_dir / "chain.sqlite") as chain:  # type: ignore[operator]
        return proposal_bytes(chain.block_at(1))


def refusals(client: httpx.Client, url: str) -> list[str]:
    return [r["reason"] for r in client.get(f"{url}/stats").json()["pbft"]["refused"] if r["height"] == 1]


def test_honest_validator_processes_refuse_each_forged_proposal(seven: LocalCluster, tmp_path) -> None:  # type: ignore[no-untyped-def]
    honest = honest_first_block(seven, tmp_path / "reference")
    validators = seven.identities().validators  # the cluster's own keys: the test holds validator-0's
    primary = validators[0]
    urls = {r.name: r.url for r in seven.description.by_role("validator")}
    checker = SignatureChecker(DOMAIN)
    backups = [v.name for v in validators[1:]]
    assigned = dict(zip(backups, sorted(FORGERIES), strict=False))  # one forgery per backup
    trusted = [v.address for v in validators]
    with httpx.Client(auth=SignedAuth(primary, trusted), timeout=30.0) as client:
        for backup, name in assigned.items():
            forged = FORGERIES[name][0](honest, primary)
            vote = sign_vote(checker, primary, PRE_PREPARE, 0, 1, sha256_hex(forged))
            reply = client.post(f"{urls[backup]}/consensus", content=encode_vote(vote, forged),
                                headers={"content-type": "application/octet-stream"})
            assert reply.status_code == 202, reply.text
        deadline = time.monotonic() + 30
        for backup, name in assigned.items():
            reason = FORGERIES[name][1]
            seen = refusals(client, urls[backup])
            while not any(reason in why for why in seen):
                assert time.monotonic() < deadline, f"{backup} ({name}): {seen}\n{seven.logs()}"
                time.sleep(0.2)
                seen = refusals(client, urls[backup])
