"""Keys nobody else knows: a cluster's participants hold fresh keys, the genesis enrols their public keys and
says so, a process given another participant's key is refused, and the audit anchors to the enrolment.

``bmoe cluster up`` lays a cluster out with :func:`~bmoe.net.cluster.launch.plan` before it starts anything:
most tests call it directly (no process is started) and run the ledger in process with the keys it made;
the last one runs a ``--seeded-keys`` cluster, whose chain is the in-process run's.
"""

from __future__ import annotations

import stat
from collections.abc import Callable
from pathlib import Path

import pytest

from bmoe.data import load_dataset
from bmoe.ledger.keys import Identity, create_identity, generate_identity, load_identity
from bmoe.net.cluster.launch import plan
from bmoe.net.cluster_file import ClusterDescription
from bmoe.net.edge.command import main as edge_main
from bmoe.net.enrolment import load_enrolment, save_enrolment
from bmoe.net.node_setup import SetupError
from bmoe.net.publish.command import main as publish_main
from bmoe.net.validator.command import main as validator_main
from bmoe.run.config import RunConfig
from bmoe.run.session import Session
from bmoe.run.setup import Identities, derive_identities, participant_names
from tests.cli.in_process import bmoe_here as bmoe
from tests.net.deploy import cluster_data, run_module, running_cluster
from tests.net.test_net_deploy_cli import one_line_error

CONFIG = RunConfig(dataset="synthetic", num_experts=4, top_k=2, num_edges=3, batch_size=16, hidden=8, difficulty=4,
                   seed=5, limit_train=64, limit_test=32)


def laid_out(root: Path, config: RunConfig = CONFIG, seeded_keys: bool = False) -> ClusterDescription:
    """What ``cluster up`` writes before it starts a process: keys, enrolment, config, ``cluster.json``."""
    cluster = plan(root, config, (1, 8, 8), 4, 1, 1, 5.0, 0, seeded_keys=seeded_keys)
    cluster.save()
    return cluster


def addresses(cluster: ClusterDescription) -> dict[str, str]:
    return load_enrolment(cluster.path(cluster.enrolment))


def test_two_clusters_from_the_same_seed_have_different_keys(tmp_path: Path) -> None:
    first, second = laid_out(tmp_path / "a"), laid_out(tmp_path / "b")
    derived = {i.name: i.address for i in derive_identities(CONFIG).everyone()}
    assert set(addresses(first)) == {*participant_names(CONFIG), "store-0"} == set(addresses(second))
    assert not set(addresses(first).values()) & set(addresses(second).values())
    assert not set(addresses(first).values()) & set(derived.values())  # the seed gives none of them away
    for record in first.processes:
        key = first.path(record.key)
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
        assert load_identity(key).address == record.address == addresses(first)[record.name]


def test_seeded_keys_are_the_seeds_and_a_cluster_brought_up_again_keeps_its_keys(tmp_path: Path) -> None:
    seeded = laid_out(tmp_path / "seeded", seeded_keys=True)
    derived = {i.name: i.address for i in derive_identities(CONFIG).everyone()}
    assert {name: address for name, address in addresses(seeded).items() if name in derived} == derived
    fresh = laid_out(tmp_path / "fresh")
    assert addresses(laid_out(tmp_path / "fresh")) == addresses(fresh)  # kept, not overwritten
    with pytest.raises(SetupError, match="is not derived from the seed"):
        laid_out(tmp_path / "fresh", seeded_keys=True)
    with pytest.raises(SetupError, match="add --seeded-keys"):
        laid_out(tmp_path / "seeded")


@pytest.fixture
def cluster(tmp_path: Path) -> ClusterDescription:
    return laid_out(tmp_path / "cluster")


def key_of(cluster: ClusterDescription, name: str) -> str:
    return str(cluster.path(cluster.process(name).key) if name != "publisher" else cluster.path(cluster.publisher_key))


Main = Callable[[list[str]], None]


@pytest.mark.parametrize(("main", "args", "role", "given", "needle"), [
    (edge_main, ["--index", "1"], "edge-1", "validator-0", "is validator-0's in the enrolment, not edge-1's"),
    (edge_main, ["--index", "1"], "edge-1", "edge-2", "is edge-2's in the enrolment, not edge-1's"),
    (edge_main, ["--index", "1"], "edge-1", "stranger", "is nobody's in the enrolment"),
    (validator_main, [], "validator-0", "edge-0", "is edge-0's in the enrolment, not validator-0's"),
    (validator_main, [], "validator-0", "store-0", "is store-0's in the enrolment, not validator-0's"),
    (validator_main, [], "validator-0", "stranger", "is nobody's in the enrolment"),
    (publish_main, [], "publisher", "edge-0", "is edge-0's in the enrolment, not publisher's"),
])
def test_a_process_given_another_participants_key_is_refused(cluster: ClusterDescription, tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str], main: Main,
                                                             args: list[str], role: str, given: str,
                                                             needle: str) -> None:
    key = tmp_path / "stranger.key"
    create_identity(key, generate_identity("stranger"))  # a key of its own that nobody enrolled
    path = key if given == "stranger" else key_of(cluster, given)
    assert needle in one_line_error(main, ["--cluster-dir", str(cluster.root), *args, "--key", str(path)], capsys)
    assert not (cluster.root / "validator-0" / "chain.sqlite").exists()


def held(cluster: ClusterDescription) -> Identities:
    """Every participant with the key the cluster made for it (the in-process run holds them all)."""
    def key(name: str) -> Identity:
        return load_identity(key_of(cluster, name))

    return Identities(key("publisher"), tuple(key(f"validator-{i}") for i in range(CONFIG.validators)),
                      tuple(key(f"edge-{i}") for i in range(CONFIG.num_edges)), seeded=False)


@pytest.fixture
def enrolled_run(cluster: ClusterDescription, tmp_path: Path) -> Path:
    run_dir = tmp_path / "run"
    data = load_dataset(CONFIG.dataset, None, CONFIG.seed, CONFIG.limit_train, CONFIG.limit_test)
    with Session(CONFIG, dataset=data, run_dir=run_dir, identities=held(cluster)) as session:
        session.train(rounds=2)
        assert session.node.state.genesis is not None and session.node.state.genesis["keys"] == "enrolled"
    return run_dir


def test_the_audit_of_an_enrolled_run_anchors_to_the_enrolled_public_keys(cluster: ClusterDescription,
                                                                         enrolled_run: Path, tmp_path: Path) -> None:
    enrolment = cluster.path(cluster.enrolment)
    result = bmoe("audit", enrolled_run, "--enrolled", enrolment)
    assert result.returncode == 0, result.stderr
    assert "keys: enrolled public keys, each held by its owner" in result.stdout
    anchored = next(line for line in result.stdout.splitlines() if line.startswith("anchored to:"))
    assert "edges" in anchored and "publisher" in anchored and str(enrolment) in anchored
    # the same audit without the enrolment cannot anchor the keys, and says so
    bare = bmoe("audit", enrolled_run)
    assert bare.returncode == 0 and "not anchored by:" in bare.stdout and "--enrolled FILE" in bare.stdout
    # an enrolment with one key swapped (or the seed's keys) is not this run's
    swapped = tmp_path / "swapped.txt"
    entries = {**addresses(cluster), "edge-1": generate_identity("edge-1").address}
    swapped.write_text("".join(f"{name} {address}\n" for name, address in entries.items()))
    refused = bmoe("audit", enrolled_run, "--enrolled", swapped)
    assert refused.returncode != 0 and "edges differs" in refused.stderr + refused.stdout, refused.stderr
    seeds = tmp_path / "seeds.json"
    save_enrolment(seeds, {i.name: i.address for i in derive_identities(CONFIG).everyone()})
    assert bmoe("audit", enrolled_run, "--enrolled", seeds).returncode != 0


def test_a_seeded_run_says_anyone_who_knows_the_seed_signs_as_anyone(tmp_path: Path) -> None:
    data = load_dataset(CONFIG.dataset, None, CONFIG.seed, CONFIG.limit_train, CONFIG.limit_test)
    with Session(CONFIG, dataset=data, run_dir=tmp_path / "run") as session:
        session.train(rounds=1)
        assert session.node.state.genesis is not None and "keys" not in session.node.state.genesis
    result = bmoe("audit", tmp_path / "run")
    assert result.returncode == 0, result.stderr
    assert "keys: derived from the run's seed" in result.stdout and "anyone who knows the seed" in result.stdout


def test_enrol_takes_operators_keys_for_edges_only_before_writing_anything(tmp_path: Path) -> None:
    operator = generate_identity("edge-2")
    cluster = plan(tmp_path / "ops", CONFIG, (1, 8, 8), 4, 1, 1, 5.0, 0, operated={"edge-2": operator.address})
    assert addresses(cluster)["edge-2"] == operator.address and not (tmp_path / "ops" / "keys" / "edge-2.key").exists()
    assert cluster.process("edge-2").argv == []
    for operated, needle in [({"validator-0": operator.address}, "validator-0 is not an edge of this cluster"),
                             ({"edge-9": operator.address}, "edge-9 is not an edge"),
                             ({"edge-1": "XY"}, "must be 64 lower-case hex chars"),
                             ({"edge-0": operator.address, "edge-1": operator.address}, "the same address")]:
        with pytest.raises(SetupError, match=needle):
            plan(tmp_path / "refused", CONFIG, (1, 8, 8), 4, 1, 1, 5.0, 0, operated=operated)
        assert not (tmp_path / "refused").exists()
    seed_key = derive_identities(CONFIG).validator.address
    with pytest.raises(SetupError, match="another participant's seed-derived key"):
        plan(tmp_path / "refused", CONFIG, (1, 8, 8), 4, 1, 1, 5.0, 0, seeded_keys=True, operated={"edge-0": seed_key})


def test_a_seeded_keys_cluster_seals_the_in_process_runs_chain_and_the_audit_says_so(
        tmp_path_factory: pytest.TempPathFactory) -> None:
    root = tmp_path_factory.mktemp("seeded") / "cluster"
    with running_cluster(root, 6.0, "--seeded-keys") as (cluster, out):
        assert "keys derived from the seed" in out
        result = run_module("bmoe.net.publish", "--cluster-dir", cluster.root, "--rounds", "1", timeout=120)
        assert result.returncode == 0, result.stdout + result.stderr + cluster.logs()
        head = cluster.get("/head")
        with Session(cluster.config, dataset=cluster_data(cluster)) as session:  # every key from the seed
            session.train(rounds=1)
            assert head["head_hash"] == session.head_hash
        audit = run_module("bmoe", "audit", "--cluster", cluster.root, timeout=120)
        assert audit.returncode == 0, audit.stdout + audit.stderr
        assert "keys: derived from the run's seed" in audit.stdout
