"""The Comparison seam: ``exact`` keys by the storage digest, the registry refuses unknown names
in one line, and the genesis encoding of ``exact`` stays the bare name (head hashes unchanged)."""

from __future__ import annotations

import pytest

from bmoe.ledger.schemas import SCHEMAS, Limits
from bmoe.ledger.state import LedgerState
from bmoe.protocol.config import RunConfig
from bmoe.storage import digest_of
from bmoe.verify.comparison import COMPARISONS, EXACT, ComparisonError, Exact, make_comparison

SAMPLES = [b"", b"\x00", b"result bytes", bytes(range(256)) * 100]


@pytest.mark.parametrize("data", SAMPLES)
def test_exact_keys_by_the_storage_digest(data: bytes) -> None:
    assert EXACT.key(data) == digest_of(data)
    assert EXACT.matches(data, digest_of(data))
    assert not EXACT.matches(data + b"!", digest_of(data))


def test_exact_counts_only_equal_bytes_as_the_same() -> None:
    assert EXACT.same(b"abc", b"abc")
    assert not EXACT.same(b"abc", b"abd")


def test_exact_is_recorded_by_its_name_alone() -> None:
    comparison = make_comparison("exact")
    assert isinstance(comparison, Exact) and comparison == EXACT
    assert comparison.name == "exact" and comparison.params == {}
    assert comparison.spec() == "exact" == RunConfig().comparison  # the genesis encoding every chain has


@pytest.mark.parametrize(("spec", "needle"), [
    ("nonsense", "comparison must be one of exact, got 'nonsense'"),
    ({"name": "nonsense", "params": {}}, "comparison must be one of exact, got 'nonsense'"),
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
    for name in COMPARISONS:
        assert check(name, Limits()) is None
    assert check("nonsense", Limits()) is not None


def test_the_ledger_state_views_the_comparison_in_force() -> None:
    state = LedgerState(genesis={"comparison": "exact"})
    assert state.comparison == EXACT
