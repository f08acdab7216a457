"""Each committed contract artifact is exactly what the pinned vyper makes of its source (``contracts/BmoeLedger.vy``,
``contracts/BmoePayments.vy``), and the ledger client's codes and bounds are the contract's."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bmoe.ethereum.artifact import (
    ARTIFACT_PATH,
    PAYMENTS_ARTIFACT_PATH,
    PAYMENTS_SOURCE_PATH,
    SOURCE_PATH,
    artifact_text,
    compile_artifact,
    read_artifact,
)
from bmoe.ethereum.cids import DAG_PB, RAW
from bmoe.ethereum.records import BOUNDS, KINDS, PHASES, REASONS, STATUSES

CONTRACTS = [(SOURCE_PATH, ARTIFACT_PATH, "bmoe-ledger/1"), (PAYMENTS_SOURCE_PATH, PAYMENTS_ARTIFACT_PATH,
                                                            "bmoe-payments/1")]


@pytest.mark.slow  # vyper's compile: 4.8-5.1 s of CPU, across the fast tier's 5 s guard
@pytest.mark.parametrize(("source", "artifact", "version"), CONTRACTS, ids=["ledger", "payments"])
def test_the_committed_artifact_equals_a_fresh_compile_of_the_source(source: Path, artifact: Path,
                                                                      version: str) -> None:
    pytest.importorskip("vyper", reason="vyper is in the dev extra: pip install -e '.[dev]'")
    fresh = artifact_text(compile_artifact(source))
    assert fresh == artifact.read_text(encoding="utf-8"), (
        f"{artifact.name} is stale: run .venv/bin/python tools/build_contract.py")


@pytest.mark.parametrize(("source", "artifact", "version"), CONTRACTS, ids=["ledger", "payments"])
def test_the_artifact_carries_the_sources_version_and_fits_mainnets_code_size_limit(source: Path, artifact: Path,
                                                                                     version: str) -> None:
    read = read_artifact(artifact)
    assert read.version == version and read.compiler.startswith("vyper 0.4.3")
    assert len(read.runtime) <= 24576  # EIP-170
    assert read.bytecode.find(read.runtime) > 0


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
