"""docs/platform.md's paid-session snippet runs as written and its bill adds up."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[2] / "docs" / "platform.md"


def test_the_paid_session_snippet_runs_as_written(capsys: pytest.CaptureFixture[str]) -> None:
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), re.DOTALL)
    snippet = next(block for block in blocks if "PaidDecoding(session)" in block)
    exec(compile(snippet, str(DOC), "exec"), {})  # the documentation's own code
    rows = [line.split() for line in capsys.readouterr().out.splitlines()]
    assert {row[0] for row in rows} == {"requester", "edge", "validator"}
    paid = sum(int(row[2]) for row in rows)
    assert paid == sum(int(row[3]) for row in rows) > 0
