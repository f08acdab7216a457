"""A language model's deployment (``bmoe lm cluster``, ``bmoe lm train --cluster``): storage nodes, a validator and
edges as real processes on 127.0.0.1, with an attacker among the edges. The seeded cluster's chain is the
in-process run's block for block, it audits, the attacker's answers are recorded and never accepted, and bad tasks
and flags are refused."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from bmoe.ledger.keys import load_identity
from bmoe.ledger.node import Signer
from bmoe.ledger.transactions import tx_to_dict
from bmoe.lm.payloads import encode_batch
from bmoe.net.cluster_file import ClusterDescription, load_cluster
from bmoe.net.http.auth import SignedAuth
from bmoe.net.store.client import HttpBlobStore
from bmoe.run.lm.artifacts import model_cids
from tests.cli.helpers import assert_user_error
from tests.cli.in_process import bmoe_here
from tests.lm.conftest import CachedCorpus

pytestmark = pytest.mark.slow  # processes started and trained: ~30 s

MODEL = ["--layers", "2", "--d-model", "16", "--expert-width", "16", "--heads", "2", "--kv-heads", "1", "--experts",
         "4", "--top-k", "2", "--context", "8", "--sequences", "2", "--eval-every", "2", "--eval-batches", "1",
         "--difficulty", "0", "--seed", "5"]
FLEET = ["--edges", "4", "--malicious-ratio", "0.25", "--attack", "gaussian", "--attack-param", "probability=1"]
STEPS = 3


@dataclass
class Deployment:
    root: Path
    cache_dir: Path
    trained: str  # bmoe lm train --cluster's output


@pytest.fixture(scope="module")
def deployment(shakespeare: CachedCorpus, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    root = tmp_path_factory.mktemp("lm-cluster") / "cluster"
    up = bmoe_here("lm", "cluster", "--dir", root, "--stores", "1", "--seeded-keys", "--cache-dir",
                   shakespeare.cache_dir, *MODEL, *FLEET)
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        trained = bmoe_here("lm", "train", "--cluster", root, "--steps", str(STEPS), "--quiet", "--cache-dir",
                            shakespeare.cache_dir)
        assert trained.returncode == 0, trained.stdout + trained.stderr
        yield Deployment(root, shakespeare.cache_dir, trained.stdout)
    finally:
        bmoe_here("cluster", "down", "--dir", root)


def _in_process(deployment: Deployment, tmp_path: Path, *fleet: str) -> Path:
    run_dir = tmp_path / "run"
    result = bmoe_here("lm", "train", "--run-dir", run_dir, "--steps", str(STEPS), "--quiet", "--cache-dir",
                       deployment.cache_dir, *MODEL, *fleet)
    assert result.returncode == 0, result.stderr
    return run_dir


def _head(run_dir: Path) -> dict[str, object]:
    return dict(json.loads((run_dir / "head.json").read_text()))


def test_the_seeded_cluster_seals_the_in_process_runs_chain(deployment: Deployment, tmp_path: Path) -> None:
    run_dir = _in_process(deployment, tmp_path, *FLEET)
    cluster_head = _head(deployment.root / "validator-0")
    assert cluster_head == _head(run_dir)  # every block: tasks, activations, commitments, decisions, records
    assert cluster_head["height"] == STEPS * 2 * 2  # a block per task: 2 layers x 2 directions
    ours = json.loads((deployment.root / "history.json").read_text())
    theirs = json.loads((run_dir / "history.json").read_text())
    for key in ("loss", "misbehaviour"):
        assert [r[key] for r in ours["rounds"]] == [r[key] for r in theirs["rounds"]], key
    assert [v["loss"] for v in ours["validation"]] == [v["loss"] for v in theirs["validation"]]
    assert "head hash" in deployment.trained


def test_the_attacker_is_recorded_and_the_model_is_the_clean_runs(deployment: Deployment, tmp_path: Path) -> None:
    history = json.loads((deployment.root / "history.json").read_text())
    assert sum(r["misbehaviour"] for r in history["rounds"]) > 0  # the gaussian edge's answers were caught
    clean = _in_process(deployment, tmp_path, "--edges", "4")  # the same fleet, every edge honest
    gate_cid, expert_cids, _ = model_cids(clean)
    head = _validator_head(deployment.root)
    assert (head["gate_cid"], head["expert_cids"]) == (gate_cid, expert_cids)  # nothing manipulated got in


def test_the_cluster_audits(deployment: Deployment) -> None:
    result = bmoe_here("audit", "--cluster", deployment.root)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"height {STEPS * 4}" in result.stdout and "lm.json" in result.stdout


def _validator_head(root: Path) -> dict[str, object]:
    cluster = load_cluster(root)
    with httpx.Client(auth=_publisher_auth(root), timeout=5) as client:
        return dict(client.get(f"{cluster.validator}/head").json())


def _publisher_auth(root: Path) -> SignedAuth:
    cluster = load_cluster(root)
    return SignedAuth(load_identity(cluster.path(cluster.publisher_key)),
                      trusted=[v.address for v in cluster.by_role("validator")])


@pytest.mark.parametrize(("task_id", "kind", "round_index", "tokens", "needle"), [
    ("train-000099", "infer", 99, None, "not a language model's training task"),  # a classifier's task id
    ("train-000099-f0", "infer", 99, [[1, 10_000] * 4] * 2, "ids in [0, "),  # a token outside the vocabulary
    ("train-000099-f0", "infer", 98, None, "must be of round 99"),  # the payload's round is not the id's
    ("train-000099-b0", "infer", 99, None, "kind train"),  # a backward task is a training task
    ("train-000099-f0", "infer", 99, [[1, 2]], "(sequences, context)"),  # not this run's batch shape
])
def test_a_task_that_is_not_the_models_is_refused(deployment: Deployment, task_id: str, kind: str, round_index: int,
                                                   tokens: list[list[int]] | None, needle: str) -> None:
    import torch

    cluster = load_cluster(deployment.root)
    identity = load_identity(cluster.path(cluster.publisher_key))
    head = _validator_head(deployment.root)
    ids = torch.tensor(tokens if tokens is not None else [[1] * 8] * 2, dtype=torch.int64)  # (sequences, context)
    with HttpBlobStore(list(cluster.stores), identity) as store:
        data_cid = store.put(encode_batch(ids, ids.clone()))
    nonce = int(head["nonces"].get(identity.address, -1)) + 1  # type: ignore[attr-defined]
    tx = Signer(identity, nonce).sign("task", {"task_id": task_id, "kind": kind, "data_cid": data_cid,
                                               "samples": int(ids.numel()), "round": round_index})
    with httpx.Client(auth=_publisher_auth(deployment.root), timeout=5) as client:
        reply = client.post(f"{cluster.validator}/tasks", json=tx_to_dict(tx))
    assert reply.status_code == 400 and reply.json()["reason"] == "bad_task_data", reply.text
    assert needle in reply.json()["error"], reply.text


def test_training_flags_are_the_deployments(deployment: Deployment) -> None:
    result = bmoe_here("lm", "train", "--cluster", deployment.root, "--layers", "3", "--steps", "1")
    assert_user_error(result, "--layers", "lm.json")


def test_a_classifier_cluster_or_none_is_refused(deployment: Deployment, tmp_path: Path) -> None:
    assert_user_error(bmoe_here("lm", "train", "--cluster", tmp_path, "--steps", "1"), "cluster.json")
    assert_user_error(bmoe_here("lm", "train", "--steps", "1"), "--run-dir", "--cluster")
    classifier = tmp_path / "classifier"
    classifier.mkdir()
    ClusterDescription(classifier, 0, "config.json", [1, 8, 8], 10, 5.0, "enrolled.json", [], "http://127.0.0.1:1",
                       "keys/publisher.key").save()
    assert_user_error(bmoe_here("lm", "train", "--cluster", classifier, "--steps", "1"), "classifier's cluster",
                      "bmoe train --cluster")
    assert_user_error(bmoe_here("train", "--cluster", deployment.root), "language model's deployment",
                      "bmoe lm train --cluster")


def test_the_explorer_shows_the_deployments_model_and_curves(deployment: Deployment) -> None:
    from starlette.testclient import TestClient

    from bmoe.explorer.app import make_app
    from bmoe.explorer.lm_source import LMClusterSource, cluster_source
    from bmoe.explorer.snapshot import Explorer
    from tests.lm.explorer_pages import parse

    source = cluster_source(deployment.root)
    assert isinstance(source, LMClusterSource)
    history = json.loads((deployment.root / "history.json").read_text())
    with TestClient(make_app(Explorer(source), True)) as client:
        pages = {path: client.get(path) for path in ("/run", "/layers", "/experts", "/cluster", "/")}
    assert {path: reply.status_code for path, reply in pages.items()} == dict.fromkeys(pages, 200)
    run = parse(pages["/run"].text)
    assert run.by_id("manifest").pairs()["layers L"] == "2"
    validation = run.by_id("loss-curve").points()["validation"]
    assert [x for x, _ in validation] == [float(point["step"]) for point in history["validation"]]
    assert [row[0] for row in run.by_id("rounds").rows()[1:]] == [str(r) for r in range(STEPS)]


def test_a_directory_holding_a_stopped_deployments_chain_is_not_brought_up_again(tmp_path: Path) -> None:
    (tmp_path / "validator-0").mkdir()
    (tmp_path / "validator-0" / "chain.sqlite").write_bytes(b"")
    assert_user_error(bmoe_here("lm", "cluster", "--dir", tmp_path), "stopped deployment's chain", "new --dir")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["validator-0"]


@pytest.mark.parametrize(("flags", "needles"), [
    (["--consensus", "pbft", "--validators", "4"], ["proof of work", "bmoe lm train --consensus pbft"]),
    (["--framework", "traditional", "--edges", "32"], ["traditional", "in process"]),
])
def test_a_deployment_it_cannot_run_is_refused_before_anything_starts(tmp_path: Path, flags: list[str],
                                                                        needles: list[str]) -> None:
    assert_user_error(bmoe_here("lm", "cluster", "--dir", tmp_path / "c", *flags), *needles)
    assert not (tmp_path / "c").exists()


def test_training_again_continues_from_the_ledger_and_extends_the_history(deployment: Deployment) -> None:
    """Last in the module: it trains the deployment one more round."""
    result = bmoe_here("lm", "train", "--cluster", deployment.root, "--steps", "1", "--quiet", "--cache-dir",
                       deployment.cache_dir)
    assert result.returncode == 0, result.stdout + result.stderr
    history = json.loads((deployment.root / "history.json").read_text())
    assert [r["step"] for r in history["rounds"]] == list(range(STEPS + 1))
    assert [v["step"] for v in history["validation"]][-1] == STEPS + 1
    assert _validator_head(deployment.root)["next_round"] == STEPS + 1
