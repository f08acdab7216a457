"""``bmoe serve --verified``: a real server generating through B-MoE among a lying edge, every response's receipt
naming sealed chunks, the text the clean engine's, and ``bmoe replay`` regenerating it from the ledger directory."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from bmoe.lm.decoding.engine import complete
from bmoe.lm.decoding.sampling import SamplingParams
from bmoe.run.lm.artifacts import open_lm_run
from tests.cli.in_process import bmoe_here
from tests.serve.server_process import ServeProcess

pytestmark = pytest.mark.slow  # a server process, a replay


@pytest.fixture(scope="module")
def ledger_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("verified") / "ledger"


@pytest.fixture(scope="module")
def server(tiny_run_dir: Path, ledger_dir: Path) -> Iterator[ServeProcess]:
    process = ServeProcess("--model-dir", tiny_run_dir, "--name", "tiny", "--verified", "--edges", "5",
                           "--attackers", "1", "--attack", "zero", "--chunk-steps", "4", "--ledger-dir", ledger_dir)
    yield process
    process.close()


def receipt_of(response: Any) -> dict[str, Any]:
    return response.model_extra["bmoe"]["receipt"]


def test_a_verified_completion_is_the_clean_one_among_a_liar_and_replays(server: ServeProcess, tiny_run_dir: Path,
                                                                         ledger_dir: Path) -> None:
    assert "verified: 5 edges" in server.first_line
    client = server.client()
    answer = client.completions.create(model="tiny", prompt="to be, or", max_tokens=20, temperature=0.7, seed=3)
    run = open_lm_run(tiny_run_dir)
    clean = complete(run.model, run.tokenizer.encode("to be, or"), SamplingParams(max_tokens=20, temperature=0.7,
                                                                                  seed=3), run.tokenizer.decode)
    assert answer.choices[0].text == clean.text
    receipt = receipt_of(answer)
    assert receipt["verification"]["verified"] is True and receipt["verification"]["records_against"] > 0
    assert receipt["ledger"]["chunks"] and receipt["ledger"]["request"]
    recorded = [json.loads(line) for line in (ledger_dir / "receipts.jsonl").read_text().splitlines()]
    assert recorded[-1]["receipt"]["id"] == receipt["id"]
    assert (recorded[-1]["prompt"], recorded[-1]["text"]) == ("to be, or", clean.text)
    replayed = bmoe_here(*["replay", receipt["id"], "--ledger-dir", str(ledger_dir)])
    assert replayed.returncode == 0, replayed.stdout + replayed.stderr
    assert "OK: the same tokens, bit for bit" in replayed.stdout + replayed.stderr


def test_a_verified_stream_ends_with_its_receipt(server: ServeProcess) -> None:
    client = server.client()
    chunks = list(client.completions.create(model="tiny", prompt="whether", max_tokens=12, stream=True, seed=1))
    assert chunks[-1].model_extra["bmoe"]["receipt"]["ledger"]["chunks"]


def test_verified_flags_need_verified_and_a_used_ledger_dir_is_refused(tiny_run_dir: Path, ledger_dir: Path) -> None:
    without = bmoe_here(*["serve", "--model-dir", str(tiny_run_dir), "--edges", "3"])
    assert without.returncode == 2 and "--edges need --verified" in without.stderr
    used = bmoe_here(*["serve", "--model-dir", str(tiny_run_dir), "--verified", "--ledger-dir", str(ledger_dir)])
    assert used.returncode == 2 and "already holds a ledger" in used.stderr
    bad = bmoe_here(*["serve", "--model-dir", str(tiny_run_dir), "--verified", "--replicas", "two"])
    assert bad.returncode == 2 and "--replicas must be" in bad.stderr


def test_replay_refuses_an_unknown_receipt(ledger_dir: Path, server: ServeProcess) -> None:
    refused = bmoe_here(*["replay", "cmpl-none", "--ledger-dir", str(ledger_dir)])
    assert refused.returncode == 2 and "neither a receipt file nor a receipt id" in refused.stderr


def test_an_optimistic_stream_cut_back_by_its_marks_is_the_verified_text(server: ServeProcess,
                                                                         tiny_run_dir: Path) -> None:
    client = server.client()
    text, marks = "", []
    for chunk in client.completions.create(model="tiny", prompt="whether 'tis", max_tokens=24, temperature=0.9,
                                           seed=8, stream=True, extra_body={"bmoe": {"optimistic": True}}):
        mark = (chunk.model_extra or {}).get("bmoe", {})
        if "verified_tokens" in mark:
            marks.append(mark)
            if "cut" in mark:
                text = text[:mark["cut"]["text_chars"]]
        elif chunk.choices:
            text += chunk.choices[0].text
    run = open_lm_run(tiny_run_dir)
    clean = complete(run.model, run.tokenizer.encode("whether 'tis"), SamplingParams(max_tokens=24, temperature=0.9,
                                                                                     seed=8), run.tokenizer.decode)
    assert text == clean.text
    assert marks and marks[-1]["verified_tokens"] == 24


def test_an_optimistic_request_must_stream(server: ServeProcess) -> None:
    with pytest.raises(openai.BadRequestError, match="applies to a stream"):
        server.client().completions.create(model="tiny", prompt="to", max_tokens=2,
                                           extra_body={"bmoe": {"optimistic": True}})


def test_a_verified_server_in_front_of_edge_processes(tiny_run_dir: Path, tmp_path: Path) -> None:
    process = ServeProcess("--model-dir", tiny_run_dir, "--name", "tiny", "--verified", "--edges", "3",
                           "--attackers", "1", "--chunk-steps", "4", "--edge-processes",
                           "--ledger-dir", tmp_path / "ledger")
    try:
        assert "edges as processes" in process.first_line
        answer = process.client().completions.create(model="tiny", prompt="to be", max_tokens=12, temperature=0.7,
                                                     seed=2)
    finally:
        process.close()
    run = open_lm_run(tiny_run_dir)
    clean = complete(run.model, run.tokenizer.encode("to be"), SamplingParams(max_tokens=12, temperature=0.7, seed=2),
                     run.tokenizer.decode)
    assert answer.choices[0].text == clean.text
    assert receipt_of(answer)["verification"]["records_against"] > 0
    assert len(list((tmp_path / "ledger" / "edges" / "keys").iterdir())) == 3  # each edge its own key


def test_the_quality_layer_scores_every_response_in_its_receipt(tiny_run_dir: Path) -> None:
    from bmoe.lm.quality.judge import FLAGS

    process = ServeProcess("--model-dir", tiny_run_dir, "--name", "tiny", "--quality", "--quality-threshold", "0.2")
    try:
        answer = process.client().completions.create(model="tiny", prompt="to be, or not", max_tokens=10, seed=1)
    finally:
        process.close()
    quality = receipt_of(answer)["verification"]["quality"]
    assert quality["heuristic"] is True and quality["threshold"] == 0.2 and quality["flag"] in FLAGS
    assert sorted(quality["scores"]) == ["validator-0", "validator-1", "validator-2"]
    assert -1 <= quality["median"] <= 1 and quality["misjudging"] == []
    assert receipt_of(answer)["verification"]["mode"] == "in-process"


def test_a_quality_threshold_needs_quality(tiny_run_dir: Path) -> None:
    refused = bmoe_here("serve", "--model-dir", str(tiny_run_dir), "--quality-threshold", "0.3")
    assert refused.returncode == 2 and "--quality-threshold needs --quality" in refused.stderr
