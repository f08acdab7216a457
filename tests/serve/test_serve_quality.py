"""``bmoe serve --verified --quality``: a real server scoring each verified response (the relevance scorer on the
cached all-MiniLM-L6-v2), the verdict sealed on the session's ledger and named in the receipt, ``bmoe audit``
re-checking it by replay; the quality flags refused by name when given without the flag they refine."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bmoe.ledger.chainstore import ChainStore
from bmoe.ledger.transactions import tx_hash
from tests.cli.in_process import bmoe_here
from tests.serve.server_process import ServeProcess


def receipt_of(response: Any) -> dict[str, Any]:
    return response.model_extra["bmoe"]["receipt"]


@pytest.mark.slow  # a server process loading the encoder, an audit
def test_a_verified_responses_quality_verdict_is_sealed_and_audited(tiny_run_dir: Path, tmp_path: Path) -> None:
    ledger_dir = tmp_path / "ledger"
    process = ServeProcess("--model-dir", tiny_run_dir, "--name", "tiny", "--verified", "--edges", "3",
                           "--chunk-steps", "4", "--ledger-dir", ledger_dir, "--quality", "--quality-threshold", "0.2")
    try:
        answers = [process.client().completions.create(model="tiny", prompt=prompt, max_tokens=8, seed=1)
                   for prompt in ("to be, or not", "what light")]
    finally:
        process.close()
    with ChainStore(ledger_dir / "chain.sqlite") as chain:
        verdicts = {tx_hash(tx): tx.payload for block in chain.iter_blocks() for tx in block.transactions
                    if tx.kind == "quality_verdict"}
    for answer in answers:
        receipt = receipt_of(answer)
        quality = receipt["verification"]["quality"]
        payload = verdicts[quality["ledger"]["tx"]]
        assert payload["response"] == receipt["id"] and payload["completion"] == receipt["completion"]["sha256"]
        assert payload["chunks"] == [entry["chunk"] for entry in receipt["ledger"]["chunks"]]
        assert payload["verdict"]["flag"] == quality["flag"] and payload["rule"]["threshold"] == 200_000
        assert receipt["verification"]["verified"] is True and quality["heuristic"] is True
    audited = bmoe_here("audit", ledger_dir)
    assert audited.returncode == 0, audited.stderr
    assert "quality verdicts (a heuristic): 2, each median, flag and misjudging list re-computed" in audited.stdout


@pytest.mark.parametrize(("flags", "message"), [
    (["--quality-band", "0.05"], "--quality-band needs --quality-threshold"),
    (["--quality", "--quality-judge-bias", "-1"], "--quality-judge-bias needs --quality-band"),
    (["--quality", "--quality-threshold", "nan"], "'--quality-threshold': must be a finite number, got nan"),
    (["--quality", "--quality-threshold", "0.2", "--quality-band", "0.1", "--quality-judge-bias", "inf"],
     "'--quality-judge-bias': must be a finite number, got inf"),
])
def test_a_quality_flag_without_the_one_it_refines_is_one_line(tiny_run_dir: Path, flags: list[str],
                                                               message: str) -> None:
    refused = bmoe_here("serve", "--model-dir", str(tiny_run_dir), *flags)
    assert refused.returncode == 2 and message in refused.stderr
