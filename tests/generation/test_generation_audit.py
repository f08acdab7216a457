"""``bmoe audit`` of a verified generation's ledger directory: every chunk's calls re-computed with the ledger's
experts; a chunk a colluding majority got accepted with wrong outputs fails the audit by name."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.in_process import bmoe_here
from tests.generation.helpers import generate, liar, model, session

pytestmark = pytest.mark.slow  # the whole audit command, twice (the replay tests check the re-computation fast)


def test_the_audit_rechecks_every_generation_call(tmp_path: Path) -> None:
    s = session(model(), {4: liar(1, 2)}, run_dir=tmp_path / "ledger")
    generate(s)
    audited = bmoe_here("audit", tmp_path / "ledger")
    assert audited.returncode == 0, audited.stderr
    assert (f"verified generation: {s.decoding.stats.chunks} chunks, {s.decoding.stats.calls} expert calls "
            "re-computed") in audited.stdout


def test_what_a_colluding_majority_got_accepted_fails_the_audit(tmp_path: Path) -> None:
    s = session(model(), {2: liar(0, 3), 3: liar(0, 3), 4: liar(0, 3)}, run_dir=tmp_path / "ledger", replicas=2)
    generate(s)  # three of five edges agree on their lie: a quorum, so the ledger accepted it
    audited = bmoe_here("audit", tmp_path / "ledger")
    assert audited.returncode != 0
    assert "accepted outputs that the ledger's experts do not give" in audited.stderr
    assert "(layer 0, expert 3)" in audited.stderr
