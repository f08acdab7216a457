"""The ledger keeps a tolerance bound inside its calibration's window: a genesis recording a calibration
whose bound is below the calibrated honest maximum, or more than 1000 x above it, is refused unless it
records ``force_bound``; ``force_bound`` without a calibration, and a calibration under another
comparison, are refused too. A run without a calibration records neither field (its genesis, config
hash and head hash are what they were)."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from bmoe.data import Dataset
from bmoe.ledger.errors import InvalidTransaction
from bmoe.ledger.state import LedgerState, apply_transaction, state_root
from bmoe.ledger.transactions import Transaction
from bmoe.run.config import ConfigError, RunConfig
from bmoe.run.session import Session
from bmoe.storage import cid_of
from bmoe.verify.bound_window import FAR_ABOVE, Calibrated, bound_in_force
from tests.conftest import small_config

CALIBRATED = Calibrated(cid_of(b"a calibration.json"), 2e-6, 4e-7)
WITH_CALIBRATION = {"comparison": "tolerance", "result_bound": 2e-5, "update_bound": 4e-6,
                    "calibration_cid": CALIBRATED.cid, "calibrated_result_max": CALIBRATED.result_max,
                    "calibrated_update_max": CALIBRATED.update_max}


@pytest.fixture(scope="module")
def genesis(tiny_data: Dataset, tmp_path_factory: pytest.TempPathFactory) -> Transaction:
    with Session(small_config(**WITH_CALIBRATION), dataset=tiny_data,
                 run_dir=tmp_path_factory.mktemp("run")) as session:
        assert session.node.chain is not None
        return next(session.node.chain.iter_blocks()).transactions[0]


def refused(tx: Transaction, **changes: Any) -> str:
    state = LedgerState()
    before = state_root(state)
    with pytest.raises(InvalidTransaction) as caught:
        apply_transaction(state, dataclasses.replace(tx, payload={**tx.payload, **changes}))
    assert state_root(state) == before and state.genesis is None
    return caught.value.reason


def tolerance(result_bound: float, update_bound: float = 4e-6) -> dict[str, Any]:
    return {"name": "tolerance", "params": {"result_bound": result_bound, "update_bound": update_bound,
                                            "norm_floor": 0.1}}


def test_the_genesis_records_the_calibration_and_nothing_forced(genesis: Transaction) -> None:
    assert genesis.payload["calibration"] == CALIBRATED.spec() and "force_bound" not in genesis.payload
    apply_transaction(LedgerState(), genesis)  # in its window: accepted
    assert "checked against calibration " + CALIBRATED.cid in (bound_in_force(genesis.payload) or "")


@pytest.mark.parametrize(("comparison", "needle"), [
    (tolerance(1e-7), "the result bound 1e-07 is below the largest honest divergence"),
    (tolerance(2e-5, 1e-8), "the update bound 1e-08 is below"),
    (tolerance(FAR_ABOVE * 2e-6 * 1.01), "more than 1000 x the largest honest divergence"),
    ("exact", "a calibration bounds a tolerance comparison, not exact"),
])
def test_a_bound_outside_the_window_is_refused_by_the_ledger(genesis: Transaction, comparison: object,
                                                              needle: str) -> None:
    assert needle in refused(genesis, comparison=comparison)


def test_force_bound_lets_it_through_and_says_so(genesis: Transaction) -> None:
    payload = {**genesis.payload, "comparison": tolerance(1e-7), "force_bound": True}
    state = LedgerState()
    apply_transaction(state, dataclasses.replace(genesis, payload=payload))
    assert state.genesis is not None and "forced (--force-bound) although the result bound" in (
        bound_in_force(payload) or "")


def test_force_bound_without_a_calibration_and_malformed_records_are_refused(genesis: Transaction) -> None:
    without = {key: value for key, value in genesis.payload.items() if key != "calibration"}
    tx = dataclasses.replace(genesis, payload={**without, "force_bound": True})
    assert "force_bound overrides a calibration's window, and none is recorded" in refused(tx)
    assert "schema" in refused(genesis, force_bound=False)  # recorded only when set
    assert "schema" in refused(genesis, calibration={**CALIBRATED.spec(), "result_max": 3.0})  # above 2: impossible
    assert "schema" in refused(genesis, calibration={"cid": CALIBRATED.cid})


def test_the_run_config_refuses_the_same_window_in_one_line() -> None:
    with pytest.raises(ConfigError, match=r"below the largest honest divergence .* give --force-bound"):
        small_config(**{**WITH_CALIBRATION, "result_bound": 1e-7})
    assert small_config(**{**WITH_CALIBRATION, "result_bound": 1e-7, "force_bound": True}).force_bound
    with pytest.raises(ConfigError, match="come together"):
        small_config(comparison="tolerance", calibration_cid=CALIBRATED.cid)
    with pytest.raises(ConfigError, match="calibration_cid must be a CID"):
        small_config(**{**WITH_CALIBRATION, "calibration_cid": "not-a-cid"})


# config hashes computed on the code before the calibration settings existed
HASHES_BEFORE = [(RunConfig(), "77e6a254b5d537cd9659784b616fa4cec08deef39f54a7b5810314a8033066ee"),
                 (RunConfig(comparison="tolerance"),
                  "fe95b748de1e67c6a7a6688576ad5f2f068dbd97ec0f018ef0a213ea5fd481a1"),
                 (small_config(comparison="tolerance", result_bound=2e-5),
                  "c750fe36619cfe30059e9b3e3ef2ae869f5791ceeaa276db46cf0bd3599cdb4a")]


def test_a_run_without_a_calibration_hashes_and_records_as_before() -> None:
    for config, before in HASHES_BEFORE:
        assert config.hash() == before
        assert config.bound_genesis() == {"comparison": config.comparison_spec()}
    calibrated = small_config(**WITH_CALIBRATION)
    stated = small_config(comparison="tolerance", result_bound=2e-5, update_bound=4e-6)
    assert len({calibrated.hash(), calibrated.replace(force_bound=True).hash(), stated.hash()}) == 3
