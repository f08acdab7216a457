"""The Comparison seam: ``exact`` keys by the storage digest, the registry refuses unknown names
in one line, and the genesis encoding of ``exact`` stays the bare name (head hashes unchanged)."""

from __future__ import annotations

import pytest

from bmoe.ledger.schemas import SCHEMAS, Limits
from bmoe.ledger.state import LedgerState
from bmoe.run.config import RunConfig
from bmoe.storage import sha256_hex
from bmoe.verify.comparison import COMPARISONS, EXACT, ComparisonError, Exact, Tolerance, make_comparison

SAMPLES = [b"", b"\x00", b"result bytes", bytes(range(256)) * 100]


@pytest.mark.parametrize("data", SAMPLES)
def test_exact_keys_by_the_storage_digest(data: bytes) -> None:
    assert EXACT.key(data) == sha256_hex(data)
    assert EXACT.matches(data, sha256_hex(data))
    assert not EXACT.matches(data + b"!", sha256_hex(data))


def test_only_tolerance_records_groups() -> None:
    assert [name for name, kind in COMPARISONS.items() if kind.records_groups] == ["tolerance"]


def test_tolerance_is_recorded_with_every_parameter() -> None:
    comparison = make_comparison({"name": "tolerance", "params": {
        "result_bound": 2e-5, "update_bound": 1e-6, "norm_floor": 0.1}})
    assert isinstance(comparison, Tolerance)
    assert comparison.bound("result") == 2e-5 and comparison.bound("update") == 1e-6
    assert comparison.spec() == {"name": "tolerance", "params": {
        "result_bound": 2e-5, "update_bound": 1e-6, "norm_floor": 0.1}}
    assert make_comparison(Tolerance().spec()) == Tolerance()
    assert make_comparison("integer").name == "integer"


def test_exact_is_recorded_by_its_name_alone() -> None:
    comparison = make_comparison("exact")
    assert isinstance(comparison, Exact) and comparison == EXACT
    assert comparison.name == "exact" and comparison.params == {}
    assert comparison.spec() == "exact" == RunConfig().comparison  # the genesis encoding every chain has


@pytest.mark.parametrize(("spec", "needle"), [
    ("nonsense", "comparison must be one of exact, tolerance, integer, got 'nonsense'"),
    ({"name": "nonsense", "params": {}}, "comparison must be one of exact, tolerance, integer, got 'nonsense'"),
    ("tolerance", "comparison tolerance: record it as"),
    ({"name": "tolerance", "params": {"result_bound": 0.0, "update_bound": 1e-6, "norm_floor": 0.1}},
     "result_bound must be a finite number > 0, got 0.0"),
    ({"name": "tolerance", "params": {"result_bound": float("nan"), "update_bound": 1e-6, "norm_floor": 0.1}},
     "result_bound must be a finite number > 0, got nan"),
    ({"name": "tolerance", "params": {"result_bound": 1e-4, "update_bound": -1.0, "norm_floor": 0.1}},
     "update_bound must be a finite number > 0"),
    ({"name": "tolerance", "params": {"result_bound": 1, "update_bound": 1e-6, "norm_floor": 0.1}},
     "result_bound must be a finite number > 0, got 1"),
    ({"name": "tolerance", "params": {"atol": 1e-4}}, "comparison tolerance: bad parameters"),
    (3, "comparison must be a name or"),
    ({"name": "exact"}, "comparison must be a name or"),
    ({"name": "exact", "params": {"atol": 0.1}}, "comparison exact: bad parameters"),
    ({"name": "exact", "params": {}}, "comparison exact: record it as 'exact'"),
])
def test_a_bad_comparison_is_refused_in_one_line(spec: object, needle: str) -> None:
    with pytest.raises(ComparisonError, match=needle) as caught:
        make_comparison(spec)
    assert "\n" not in str(caught.value)
    assert isinstance(caught.value, ValueError)


def test_the_genesis_schema_allows_exactly_the_registered_comparisons() -> None:
    check = SCHEMAS["genesis"]["comparison"]
    assert check("exact", Limits()) is None and check("integer", Limits()) is None
    assert check(Tolerance().spec(), Limits()) is None
    assert check("tolerance", Limits()) is not None  # a comparison with parameters is recorded with them
    assert check("nonsense", Limits()) is not None


def test_the_ledger_state_views_the_comparison_in_force() -> None:
    state = LedgerState(genesis={"comparison": "exact"})
    assert state.comparison == EXACT
