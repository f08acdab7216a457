"""Recorded config hashes stay valid: the hash derived from the settings' declarations (``run/settings/``) equals,
byte for byte, the one the hand-written ``RunConfig.hash`` gave before them.

``config_hash_vectors.json`` holds 412 configs (every variation of framework, assignment, comparison and
calibration, economics, fleets, consensus, attacks and execution settings, alone, in pairs and in threes) with
the hashes computed by the original code (commit c07cf8f, before the declarations); never regenerate it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bmoe.run.config import RunConfig

VECTORS = json.loads((Path(__file__).parent / "config_hash_vectors.json").read_text())


def test_the_vectors_cover_every_hash_rule() -> None:
    changed = {key for vector in VECTORS for key in vector["changes"]}
    assert changed >= {"assignment", "trusted_replicas", "result_bound", "calibration_cid", "force_bound", "stake",
                       "fleet", "validator_fleet", "store", "rounds", "attack_params"}
    assert len({vector["hash"] for vector in VECTORS}) > 350


@pytest.mark.parametrize("vector", VECTORS, ids=lambda vector: vector["hash"][:12])
def test_hash_is_as_before_the_declarations(vector: dict[str, object]) -> None:
    assert RunConfig(**vector["changes"]).validate().hash() == vector["hash"]


def test_an_execution_setting_leaves_the_hash_alone_and_a_recorded_one_moves_it() -> None:
    base = RunConfig()
    assert base.replace(rounds=7, threads=3, store="ipfs").hash() == base.hash()
    assert base.replace(seed=1).hash() != base.hash()
