"""The committed contract artifact is exactly what the pinned vyper makes of ``contracts/BmoeLedger.vy``, and the
client's codes and bounds are the contract's."""

from __future__ import annotations

import re

import pytest

from bmoe.ethereum.artifact import ARTIFACT_PATH, SOURCE_PATH, artifact_text, compile_artifact, load_artifact
from bmoe.ethereum.cids import DAG_PB, RAW
from bmoe.ethereum.records import BOUNDS, KINDS, PHASES, REASONS, STATUSES


@pytest.mark.slow  # vyper's compile: 4.8-5.1 s of CPU, across the fast tier's 5 s guard
def test_the_committed_artifact_equals_a_fresh_compile_of_the_source() -> None:
    pytest.importorskip("vyper", reason="vyper is in the dev extra: pip install -e '.[dev]'")
    fresh = artifact_text(compile_artifact(SOURCE_PATH))
    assert fresh == ARTIFACT_PATH.read_text(encoding="utf-8"), (
        "BmoeLedger.json is stale: run .venv/bin/python tools/build_contract.py")


def test_the_artifact_carries_the_sources_version_and_fits_mainnets_code_size_limit() -> None:
    artifact = load_artifact()
    assert artifact.version == "bmoe-ledger/1" and artifact.compiler.startswith("vyper 0.4.3")
    assert len(artifact.runtime) <= 24576  # EIP-170
    assert artifact.bytecode.find(artifact.runtime) > 0


def test_the_clients_codes_and_bounds_are_the_contracts() -> None:
    source = SOURCE_PATH.read_text(encoding="utf-8")
    constants = {name: int(value) for name, value in
                 re.findall(r"^([A-Z_]+): constant\(uint\d+\) = (\d+)", source, re.MULTILINE)}
    assert {name: constants[f"MAX_{name.upper()}"] for name in BOUNDS} == BOUNDS
    assert {name: constants[name.upper()] for name in KINDS} == KINDS
    assert {name: constants[name.upper()] for name in PHASES} == PHASES
    assert {name: constants[name.upper()] for name in STATUSES} == STATUSES
    assert {name: constants[name.upper()] for name in REASONS} == REASONS
    assert (constants["RAW"], constants["DAG_PB"]) == (RAW, DAG_PB)
