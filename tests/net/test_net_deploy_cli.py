"""The deployment's commands refuse bad input in one line, exit 2, and start or write nothing.

``bmoe cluster up``, ``bmoe validator``, ``bmoe edge`` and ``bmoe publish`` are run in this process
through their ``main`` (the ``python -m bmoe.net.<role>`` entry points); every case fails before a
socket is bound or a storage node is asked anything.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from bmoe.cli.cluster import main as cluster_main
from bmoe.ledger.keys import derive_identity, save_identity
from bmoe.net.edge.command import main as edge_main
from bmoe.net.enrolment import save_enrolment
from bmoe.net.publish.command import main as publish_main
from bmoe.net.validator.command import main as validator_main
from bmoe.run.config import RunConfig
from bmoe.run.setup import derive_identities

CONFIG = RunConfig(dataset="synthetic", num_experts=4, top_k=2, num_edges=3, hidden=16, batch_size=32, seed=5)


def one_line_error(run: Callable[[list[str]], None], args: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as info:
        run(args)
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert info.value.code == 2 and len(lines) == 1, lines
    assert lines[0].startswith("error: "), lines
    return lines[0]


@pytest.mark.parametrize(("needle", "args"), [
    ("one PoW validator, or n >= 4 PBFT validators", ["--validators", "4"]),
    ("one PoW validator, or n >= 4 PBFT validators", ["--consensus", "pbft"]),
    ("malicious ratio", ["--malicious", "2"]),
    ("the traditional framework has one server and no consensus",
     ["--framework", "traditional", "--consensus", "pbft", "--validators", "4"]),
    ("unknown attack", ["--attack", "nonsense"]),
    ("--attack-param must look like", ["--attack-param", "probability"]),
    ("needs at least 3 storage nodes", ["--stores", "2", "--replication", "3"]),
    ("not a directory", ["--dir-is-a-file"]),
    ("expected NAME=ADDRESS with NAME one of store-0, store-1, validator-0", ["--listen", "edge-0=127.0.0.2"]),
    ("'localhost' is not an IP address", ["--listen", "store-0=localhost"]),
    ("No such option", ["--colour"]),
])
def test_cluster_up_refuses_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str], needle: str,
                                      args: list[str]) -> None:
    (tmp_path / "a-file").write_text("")
    target = tmp_path / ("a-file" if args == ["--dir-is-a-file"] else "new")
    args = [] if args == ["--dir-is-a-file"] else args
    assert needle in one_line_error(cluster_main, ["up", "--dir", str(target), *args], capsys)
    assert not (tmp_path / "new").exists()


def test_status_and_down_of_a_directory_without_a_cluster(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for command in ("status", "down"):
        assert "does not exist" in one_line_error(cluster_main, [command, "--dir", str(tmp_path)], capsys)


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    ids = derive_identities(CONFIG)
    (tmp_path / "config.json").write_text(json.dumps(CONFIG.to_dict()))
    (tmp_path / "pbft.json").write_text(json.dumps(CONFIG.replace(consensus="pbft", validators=4).to_dict()))
    for identity in (ids.publisher, ids.validator, *ids.edges):
        save_identity(tmp_path / f"{identity.name}.key", identity)
    save_identity(tmp_path / "stranger.key", derive_identity(99, "validator-0"))
    save_enrolment(tmp_path / "enrolled.json", {i.name: i.address for i in (ids.publisher, ids.validator, *ids.edges)})
    save_enrolment(tmp_path / "partial.json", {i.name: i.address for i in (ids.publisher, ids.validator)})
    return {path.stem: path for path in tmp_path.iterdir()}


def test_validator_refuses_bad_flags_before_binding(files: dict[str, Path], tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    good = ["--config", str(files["config"]), "--key", str(files["validator-0"]), "--enrolled",
            str(files["enrolled"]), "--stores", "http://127.0.0.1:9", "--run-dir", str(tmp_path / "run")]
    cases = {
        "missing --config": good[2:],
        "the enrolment does not name validator-1, validator-2, validator-3": ["--config", str(files["pbft"]),
                                                                              *good[2:]],
        "is nobody's in the enrolment": [*good, "--key", str(files["stranger"])],
        "is edge-0's in the enrolment, not validator-0's": [*good, "--key", str(files["edge-0"])],
        "the enrolment does not name edge-0, edge-1, edge-2": [*good, "--enrolled", str(files["partial"])],
        "cannot read config file": [*good, "--config", str(tmp_path / "none.json")],
        "--input-shape must be positive": [*good, "--input-shape", "1,x", "--classes", "4"],
        "did not answer as an enrolled node": [*good, "--input-shape", "1,8,8", "--classes", "4"],
    }
    for needle, args in cases.items():
        assert needle in one_line_error(validator_main, args, capsys), needle
    assert not (tmp_path / "run").exists()


def test_edge_refuses_bad_flags(files: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    good = ["--validator", "http://127.0.0.1:9", "--stores", "http://127.0.0.1:9", "--key", str(files["edge-1"]),
            "--config", str(files["config"]), "--index", "1"]
    cases = {
        "missing --validator": good[2:],
        "the config has 3 edges": [*good, "--index", "3"],
        "is edge-1's in the keys the config's seed derives, not edge-2's": [*good, "--index", "2"],
        "is validator-0's in the enrolment, not edge-1's": [*good, "--key", str(files["validator-0"]),
                                                            "--enrolled", str(files["enrolled"])],
        "unknown attack": [*good, "--attack", "nonsense"],
        "has no parameter": [*good, "--attack", "gaussian", "--attack-param", "volume=11"],
    }
    for needle, args in cases.items():
        assert needle in one_line_error(edge_main, args, capsys), needle


def test_publish_refuses_bad_flags(files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = ["--validator", "http://127.0.0.1:9", "--stores", "http://127.0.0.1:9", "--key", str(files["publisher"]),
            "--config", str(files["config"])]
    assert "missing --key" in one_line_error(publish_main, [*good[:4], *good[6:]], capsys)
    assert "is edge-0's in the keys the config's seed derives, not publisher's" in one_line_error(
        publish_main, [*good, "--key", str(files["edge-0"])], capsys)
    assert "does not exist" in one_line_error(publish_main, ["--cluster-dir", str(tmp_path / "none")], capsys)
    assert "unreachable" in one_line_error(publish_main, [*good, "--rounds", "1"], capsys)
