"""The committed payments artifact is exactly what the pinned vyper makes of ``contracts/BmoePayments.vy``."""

from __future__ import annotations

import pytest

from bmoe.ethereum.artifact import (
    PAYMENTS_ARTIFACT_PATH,
    PAYMENTS_SOURCE_PATH,
    artifact_text,
    compile_artifact,
    load_payments_artifact,
)


@pytest.mark.slow  # vyper's compile: seconds of CPU
def test_the_committed_payments_artifact_equals_a_fresh_compile_of_the_source() -> None:
    pytest.importorskip("vyper", reason="vyper is in the dev extra: pip install -e '.[dev]'")
    fresh = artifact_text(compile_artifact(PAYMENTS_SOURCE_PATH))
    assert fresh == PAYMENTS_ARTIFACT_PATH.read_text(encoding="utf-8"), (
        "BmoePayments.json is stale: run .venv/bin/python tools/build_contract.py")


def test_the_payments_artifact_carries_its_version_and_fits_mainnets_code_size_limit() -> None:
    artifact = load_payments_artifact()
    assert artifact.version == "bmoe-payments/1" and artifact.compiler.startswith("vyper 0.4.3")
    assert len(artifact.runtime) <= 24576  # EIP-170
    assert artifact.bytecode.find(artifact.runtime) > 0
