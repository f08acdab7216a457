"""docs/lm.md's "Decoding with a KV cache" example runs as written (its own assertions included: the call log
re-computed bit for bit)."""

from __future__ import annotations

import re
from pathlib import Path

DOCS = Path(__file__).resolve().parents[2] / "docs" / "lm.md"


def test_the_decoding_sections_example_runs() -> None:
    section = DOCS.read_text().split("## Decoding with a KV cache\n", 1)[1].split("\n## ", 1)[0]
    (snippet,) = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    namespace: dict[str, object] = {"__name__": "docs"}
    exec(compile(snippet, str(DOCS), "exec"), namespace)
    engine = namespace["engine"]
    assert engine.busy  # type: ignore[attr-defined]  # the rolled-back request runs again
