"""``bmoe train --fleet``: a bad fleet exits 2 in one line writing nothing; a mixed fleet exits 3."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.helpers import SMALL, assert_user_error
from tests.cli.in_process import bmoe_here as bmoe


@pytest.mark.parametrize(("fleet", "needle"), [
    ("nosuch=5", "unknown numeric profile 'nosuch'"),
    ("f64=4", "fleet counts sum to 4, but there are 5 edges"),
    ("f64=x,default=4", "COUNT must be a whole number"),
    ("default=4,mkl-compat=1", "only an edge process can do"),
])
def test_a_bad_fleet_exits_2_in_one_line_and_writes_nothing(tmp_path: Path, fleet: str, needle: str) -> None:
    result = bmoe("train", "--run-dir", tmp_path / "run", *SMALL, "--rounds", "2", "--fleet", fleet)
    assert_user_error(result, needle)
    assert not (tmp_path / "run").exists()


def test_a_mixed_fleet_under_exact_comparison_exits_3_sealing_only_the_genesis(tmp_path: Path) -> None:
    result = bmoe("train", "--run-dir", tmp_path / "run", *SMALL, "--rounds", "2", "--fleet", "default=3,f64=2")
    assert result.returncode == 3, result.stdout + result.stderr
    assert "honest edges disagree" in result.stderr and "Traceback" not in result.stderr
    audit = bmoe("audit", tmp_path / "run")
    assert audit.returncode == 0 and "1 blocks (height 0)" in audit.stdout, audit.stdout + audit.stderr
