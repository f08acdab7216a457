"""``bmoe demo`` end to end (few rounds): four runs on a mixed fleet under the tolerance comparison, a
table, demo.json, and B-MoE unmoved by attackers and accusing no honest edge."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli.helpers import assert_user_error
from tests.cli.in_process import bmoe_here as bmoe


@pytest.mark.slow  # four training runs (about two minutes on 2 cores)
def test_demo_runs_and_bmoe_is_unmoved_by_attackers(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    result = bmoe("demo", "--rounds", "6", "--out", out, columns=80)
    assert result.returncode == 0, result.stderr
    rows = {row["name"]: row for row in json.loads((out / "demo.json").read_text())}
    assert set(rows) == {"bmoe-r0.0", "bmoe-r0.3", "traditional-r0.0", "traditional-r0.3"}
    assert rows["bmoe-r0.3"]["test_accuracy"] == rows["bmoe-r0.0"]["test_accuracy"]
    assert rows["bmoe-r0.3"]["misbehaviour_records"] > 0
    assert rows["bmoe-r0.0"]["misbehaviour_records"] == 0  # a mixed honest fleet: nobody accused
    assert {row["comparison"] for row in rows.values()} == {"tolerance"}
    config = json.loads((out / "bmoe-r0.0" / "config.json").read_text())
    assert len({part.split("=")[0] for part in config["fleet"].split(",")}) > 1 and "tolerance" in result.stdout
    clean = rows["bmoe-r0.0"]
    assert clean["served_persistent"] == clean["served_transient"] == clean["test_accuracy"]  # unmoved: both readings
    assert "served_persistent" in rows["traditional-r0.0"] and "served_persistent" not in rows["bmoe-r0.3"]
    assert "noise kept" in result.stdout and "Trained among 30% colluding attackers" in result.stdout
    assert max(len(line) for line in result.stdout.splitlines()) <= 80  # an 80-column terminal
    assert bmoe("audit", out / "bmoe-r0.3").returncode == 0
    assert_user_error(bmoe("demo", "--rounds", "6", "--out", out), "already exists")
