"""``bmoe serve`` through the official ``openai`` client: completions and chat completions, whole and streamed,
usage, seeds, stop strings, the receipt (body, last chunk, header, ``/bmoe/receipts``), and concurrent requests
batched into the same steps with the text each gets alone. One real server process for the module, serving the
tiny trained run; what it answers is checked against the decoding engine run here on the same model."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from bmoe.lm.checkpoint import save_pretrained
from bmoe.lm.decoding.engine import Completion, DecodingEngine
from bmoe.lm.decoding.sampling import SamplingParams
from bmoe.lm.pretrained.chat_template import ChatTemplate
from bmoe.run.lm.artifacts import LMRun, open_lm_run
from bmoe.serve.served_model import PLAIN_CHAT_TEMPLATE
from bmoe.storage import cid_of
from tests.serve.server_process import ServeProcess

pytestmark = pytest.mark.witness(seconds=15)  # the module's first test starts the server and builds the run


@pytest.fixture(scope="module")
def server(tiny_run_dir: Path) -> Iterator[ServeProcess]:
    process = ServeProcess("--model-dir", tiny_run_dir, "--name", "tiny")
    yield process
    process.close()


@pytest.fixture(scope="module")
def client(server: ServeProcess) -> openai.OpenAI:
    return server.client()


@pytest.fixture(scope="module")
def run(tiny_run_dir: Path) -> LMRun:
    return open_lm_run(tiny_run_dir)


def reference(run: LMRun, prompt: list[int], params: SamplingParams) -> tuple[Completion, str]:
    """The completion the engine gives here, alone, and the digest of its expert calls as docs/serving.md
    defines it (written out again here, from the call log)."""
    engine = DecodingEngine(run.model, decode=run.tokenizer.decode, max_batch=1)
    request = engine.submit(prompt, params)
    for _ in engine.events():
        pass
    lines = []
    for (layer, expert), rows in engine.log.take().items():
        digest = hashlib.sha256()
        for position, row_in, row_out in zip(rows.positions.tolist(), rows.inputs, rows.outputs, strict=True):
            digest.update(position.to_bytes(8, "little", signed=True) + row_in.numpy().tobytes()
                          + row_out.numpy().tobytes())
        lines.append(f"{layer} {expert} {rows.positions.numel()} {digest.hexdigest()}\n")
    return engine.result(request), hashlib.sha256("".join(sorted(lines, key=_layer_expert)).encode()).hexdigest()


def _layer_expert(line: str) -> tuple[int, int]:
    layer, expert = line.split()[:2]
    return int(layer), int(expert)


def chat_prompt(run: LMRun, messages: list[dict[str, str]]) -> list[int]:
    return run.tokenizer.encode(ChatTemplate(PLAIN_CHAT_TEMPLATE).render(messages))


def receipt_of(response: Any) -> dict[str, Any]:
    return response.model_extra["bmoe"]["receipt"]


def test_the_model_is_listed_under_its_name_with_its_identity(client: openai.OpenAI, run: LMRun) -> None:
    assert [model.id for model in client.models.list()] == ["tiny"]
    card = client.models.retrieve("tiny")
    assert card.owned_by == "bmoe"
    assert card.model_extra["bmoe"]["source"]["run"]["trusted_cid"] == run.gate_cid
    answer = client.completions.create(model="tiny", prompt="to be", max_tokens=1)
    assert receipt_of(answer)["model"] == card.model_extra["bmoe"]


def test_a_greedy_completion_is_the_engines_with_usage_and_receipt(client: openai.OpenAI, run: LMRun,
                                                                    tiny_run_dir: Path) -> None:
    raw = client.completions.with_raw_response.create(model="tiny", prompt="to be, or", max_tokens=30,
                                                      temperature=0, seed=4)
    completion = raw.parse()
    prompt = run.tokenizer.encode("to be, or")
    expected, calls = reference(run, prompt, SamplingParams(max_tokens=30, temperature=0, seed=4))
    assert completion.choices[0].text == expected.text
    assert completion.choices[0].finish_reason == "length"
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens, completion.usage.total_tokens) == (
        len(prompt), 30, len(prompt) + 30)
    receipt = receipt_of(completion)
    assert raw.headers["x-bmoe-receipt"] == receipt["id"] == completion.id
    assert receipt["seed"] == 4
    assert receipt["sampling"] == {"max_tokens": 30, "temperature": 0.0, "top_p": 1.0, "top_k": None, "stop": [],
                                   "eos_token_id": None}
    assert receipt["prompt"]["tokens"] == len(prompt)
    assert receipt["completion"]["tokens"] == 30
    assert receipt["calls"]["sha256"] == calls
    assert receipt["calls"]["rows"] == (len(prompt) + 29) * 2 * 2  # tokens fed x layers x top-2
    save_pretrained(run.model, tiny_run_dir.parent / "exported")  # what `bmoe lm export` writes
    assert receipt["model"]["weights_cid"] == cid_of((tiny_run_dir.parent / "exported/model.safetensors").read_bytes())
    assert receipt["model"]["source"]["run"]["trusted_cid"] == run.gate_cid
    assert receipt["ledger"] is None and receipt["verification"]["verified"] is False


def test_a_chat_completion_renders_the_template_and_streams_the_same_text(client: openai.OpenAI, run: LMRun,
                                                                          server: ServeProcess) -> None:
    messages = [{"role": "system", "content": "be brief."}, {"role": "user", "content": "to be?"}]
    whole = client.chat.completions.create(model="tiny", messages=messages, max_completion_tokens=25,
                                           temperature=0.8, seed=11)
    prompt = chat_prompt(run, messages)
    expected, _ = reference(run, prompt, SamplingParams(max_tokens=25, temperature=0.8, seed=11))
    assert whole.choices[0].message.role == "assistant"
    assert whole.choices[0].message.content == expected.text
    assert whole.usage.prompt_tokens == len(prompt)
    stream = client.chat.completions.create(model="tiny", messages=messages, max_completion_tokens=25,
                                            temperature=0.8, seed=11, stream=True,
                                            stream_options={"include_usage": True})
    chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == expected.text
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "length"
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == 25
    assert all(c.usage is None for c in chunks[:-1])
    receipt = receipt_of(chunks[-1])
    assert stream.response.headers["x-bmoe-receipt"] == receipt["id"] == chunks[0].id
    assert receipt["completion"]["sha256"] == receipt_of(whole)["completion"]["sha256"]
    kept = httpx.get(server.bmoe_url(f"/bmoe/receipts/{receipt['id']}"))
    assert kept.json() == receipt


def test_a_streamed_completion_ends_with_the_receipt_and_done(server: ServeProcess, client: openai.OpenAI) -> None:
    whole = client.completions.create(model="tiny", prompt="whether", max_tokens=20, temperature=0)
    with httpx.stream("POST", server.url + "/completions", json={"model": "tiny", "prompt": "whether",
                                                                 "max_tokens": 20, "temperature": 0,
                                                                 "stream": True}) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        events = [line for line in response.iter_lines() if line]
    assert events[-1] == "data: [DONE]"
    chunks = [httpx.Response(200, content=line.removeprefix("data: ")).json() for line in events[:-1]]
    assert all(c["object"] == "text_completion" and c["id"] == chunks[0]["id"] for c in chunks)
    assert "".join(c["choices"][0]["text"] for c in chunks) == whole.choices[0].text
    assert chunks[-1]["choices"][0]["finish_reason"] == "length"
    assert chunks[-1]["bmoe"]["receipt"]["id"] == response.headers["x-bmoe-receipt"]
    assert all("bmoe" not in c for c in chunks[:-1])


def test_a_seed_fixes_a_sampled_completion_and_the_receipt_records_one_drawn(client: openai.OpenAI) -> None:
    def sample(**seed: int) -> Any:
        return client.completions.create(model="tiny", prompt="to be", max_tokens=24, temperature=1.0, **seed)

    first, again, other = sample(seed=7), sample(seed=7), sample(seed=8)
    assert first.choices[0].text == again.choices[0].text != other.choices[0].text
    drawn = sample()
    replayed = sample(seed=receipt_of(drawn)["seed"])
    assert replayed.choices[0].text == drawn.choices[0].text


def test_a_stop_string_ends_the_text_before_it(client: openai.OpenAI) -> None:
    free = client.completions.create(model="tiny", prompt="the question", max_tokens=40, temperature=0)
    text = free.choices[0].text
    stop = text[10:12]
    stopped = client.completions.create(model="tiny", prompt="the question", max_tokens=40, temperature=0,
                                        stop=[stop, "\u00e9\u00e9"])
    assert stopped.choices[0].text == text[:text.index(stop)]
    assert stopped.choices[0].finish_reason == "stop"
    assert receipt_of(stopped)["sampling"]["stop"] == [stop, "\u00e9\u00e9"]


def test_an_unknown_parameter_is_ignored_and_echo_prepends_the_prompt(client: openai.OpenAI) -> None:
    plain = client.completions.create(model="tiny", prompt="to be", max_tokens=5, temperature=0)
    echoed = client.completions.create(model="tiny", prompt="to be", max_tokens=5, temperature=0, echo=True,
                                       extra_body={"no_such_parameter": [1, 2], "repetition_penalty": 1.0})
    assert echoed.choices[0].text == "to be" + plain.choices[0].text


def test_concurrent_requests_are_decoded_together_each_as_alone(client: openai.OpenAI,
                                                                server: ServeProcess) -> None:
    prompts = ["to be", "or not to be, that", "whether 'tis", "nobler in the mind to"]

    def ask(prompt: str) -> tuple[str, str]:
        answer = client.completions.create(model="tiny", prompt=prompt, max_tokens=120 - len(prompt),
                                           temperature=0)
        return answer.choices[0].text, receipt_of(answer)["calls"]["sha256"]

    alone = [ask(prompt) for prompt in prompts]
    before = server.stats()
    with ThreadPoolExecutor(len(prompts)) as pool:
        together = list(pool.map(ask, prompts))
    after = server.stats()
    assert together == alone  # the same text and the same expert calls, bit for bit
    assert after["batched_steps"] > before["batched_steps"]
    assert after["largest_batch"] >= 2


def test_the_docs_client_snippet_runs_as_written(server: ServeProcess, capsys: pytest.CaptureFixture[str]) -> None:
    docs = (Path(__file__).resolve().parents[2] / "docs" / "serving.md").read_text()
    (snippet,) = re.findall(r"```python\n(.*?)```", docs, flags=re.S)
    assert "http://127.0.0.1:8000/v1" in snippet and '"smollm2-135m"' in snippet
    exec(snippet.replace("http://127.0.0.1:8000/v1", server.url).replace('"smollm2-135m"', '"tiny"'), {})
    printed = capsys.readouterr().out
    assert "bafk" in printed and "completion_tokens=32" in printed
