"""What ``bmoe serve`` refuses, in the OpenAI API's error shape and status (seen through the ``openai`` client's
exceptions), and a client that goes away mid-stream: its request is released in the engine and the server goes on
answering. One real server process for the module; the command's own flag errors run in process."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from tests.cli.helpers import assert_user_error
from tests.cli.in_process import bmoe_here
from tests.serve.server_process import CONTEXT, ServeProcess

pytestmark = pytest.mark.witness(seconds=15)  # the module's first test starts the server and builds the run


@pytest.fixture(scope="module")
def server(tiny_run_dir: Path) -> Iterator[ServeProcess]:
    process = ServeProcess("--model-dir", tiny_run_dir, "--name", "tiny", "--max-batch", "4")
    yield process
    process.close()


@pytest.fixture(scope="module")
def client(server: ServeProcess) -> openai.OpenAI:
    return server.client()


def healthy(client: openai.OpenAI) -> None:
    answer = client.chat.completions.create(model="tiny", messages=[{"role": "user", "content": "to be"}],
                                            max_tokens=3, temperature=0)
    assert answer.choices[0].finish_reason == "length" and answer.usage.completion_tokens == 3


def error_of(raised: pytest.ExceptionInfo[openai.APIStatusError]) -> dict[str, Any]:
    body = raised.value.body
    assert isinstance(body, dict) and set(body) == {"message", "type", "param", "code"}, body
    return body


@pytest.mark.parametrize(("arguments", "param", "code"), [
    ({"max_tokens": 10**12}, "max_tokens", "context_length_exceeded"),
    ({"max_tokens": CONTEXT}, "max_tokens", "context_length_exceeded"),
    ({"messages": [{"role": "user", "content": "to be " * CONTEXT}]}, "messages", "context_length_exceeded"),
    ({"temperature": -0.5}, "temperature", "invalid_value"),
    ({"temperature": "hot"}, "temperature", "invalid_type"),
    ({"top_p": 0}, "top_p", "invalid_value"),
    ({"n": 2}, "n", "unsupported_parameter"),
    ({"stop": 5}, "stop", "invalid_type"),
    ({"seed": 1.5}, "seed", "invalid_type"),
    ({"max_tokens": -1}, "max_tokens", "invalid_value"),
    ({"messages": [{"role": "narrator", "content": "to be"}]}, "messages[0].role", "invalid_value"),
    ({"messages": [{"role": "user", "content": "\u00e9t\u00e9"}]}, "messages", "invalid_value"),
    ({"messages": []}, "messages", "empty_array"),
    ({"stream_options": {"include_usage": True}}, "stream_options", "invalid_value"),
    ({"logprobs": True}, "logprobs", "unsupported_parameter"),
])
def test_a_bad_chat_request_is_a_400_naming_the_parameter(client: openai.OpenAI, arguments: dict[str, Any],
                                                           param: str, code: str) -> None:
    request = {"model": "tiny", "messages": [{"role": "user", "content": "to be"}], **arguments}
    with pytest.raises(openai.BadRequestError) as raised:
        client.chat.completions.create(**request)
    error = error_of(raised)
    assert raised.value.status_code == 400
    assert (error["param"], error["code"], error["type"]) == (param, code, "invalid_request_error"), error
    healthy(client)


def test_an_unknown_model_is_a_404_model_not_found(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as raised:
        client.completions.create(model="gpt-5", prompt="to be")
    assert (error_of(raised)["code"], error_of(raised)["param"]) == ("model_not_found", "model")
    assert "gpt-5" in error_of(raised)["message"]
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("gpt-5")


@pytest.mark.parametrize("body", [b"{not json", b"[1, 2]", b'{"model": "tiny", "prompt": "a"' + b"]" * 100,
                                  b'{"model": "tiny", "prompt": NaN}', b"\xff\xfe"])
def test_a_body_that_is_not_a_json_object_is_a_400(server: ServeProcess, client: openai.OpenAI,
                                                    body: bytes) -> None:
    response = httpx.post(server.url + "/completions", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error" and error["message"]
    healthy(client)


def test_a_body_over_16_mib_is_a_413_read_no_further(server: ServeProcess, client: openai.OpenAI) -> None:
    body = b'{"model": "tiny", "prompt": "' + b"a" * (16 * 2**20) + b'"}'
    response = httpx.post(server.url + "/completions", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 413 and response.json()["error"]["code"] == "body_too_large"
    healthy(client)


def test_a_bad_completion_prompt_is_a_400(client: openai.OpenAI) -> None:
    for prompt, needle in (([1, 2, 10**6], "vocabulary"), (["to be", "or not"], "one prompt"), ("", "empty"),
                           ([{"x": 1}], "Invalid type")):
        with pytest.raises(openai.BadRequestError) as raised:
            client.completions.create(model="tiny", prompt=prompt)  # type: ignore[arg-type]
        assert needle in error_of(raised)["message"] and error_of(raised)["param"] == "prompt"


def test_an_unknown_route_and_a_wrong_method_answer_in_the_apis_shape(server: ServeProcess) -> None:
    missing = httpx.get(server.url + "/engines")
    assert missing.status_code == 404 and missing.json()["error"]["type"] == "invalid_request_error"
    wrong = httpx.get(server.url + "/chat/completions")
    assert wrong.status_code == 405 and "error" in wrong.json()


def test_a_client_gone_mid_stream_is_released_and_the_server_goes_on(server: ServeProcess,
                                                                     client: openai.OpenAI) -> None:
    before = server.stats()
    body = {"model": "tiny", "prompt": "to be", "max_tokens": CONTEXT - 10, "temperature": 0, "stream": True}
    with httpx.stream("POST", server.url + "/completions", json=body) as response:
        lines = response.iter_lines()
        first = next(line for line in lines if line)
        assert json.loads(first.removeprefix("data: "))["object"] == "text_completion"
    # closed after one chunk of CONTEXT - 10 tokens
    deadline = time.monotonic() + 30
    while (now := server.stats())["running"] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert now["running"] == 0
    assert now["cancelled"] == before["cancelled"] + 1 and now["finished"] == before["finished"]
    healthy(client)


def test_a_client_gone_before_a_whole_answer_is_released_too(server: ServeProcess, client: openai.OpenAI) -> None:
    before = server.stats()
    body = json.dumps({"model": "tiny", "prompt": "to be", "max_tokens": CONTEXT - 10, "temperature": 0}).encode()
    host, port = server.url.removeprefix("http://").removesuffix("/v1").rsplit(":", 1)
    with socket.create_connection((host, int(port))) as raw:
        raw.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                    b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
        deadline = time.monotonic() + 30
        while server.stats()["submitted"] == before["submitted"] and time.monotonic() < deadline:
            time.sleep(0.01)
    deadline = time.monotonic() + 30
    while (now := server.stats())["running"] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert now["submitted"] == before["submitted"] + 1
    assert now["cancelled"] == before["cancelled"] + 1 and now["finished"] == before["finished"]
    healthy(client)


def test_bad_flags_are_one_line_and_exit_2(tmp_path: Path, tiny_run_dir: Path) -> None:
    assert_user_error(bmoe_here("serve", "--model-dir", tmp_path / "nowhere"), "no such directory")
    assert_user_error(bmoe_here("serve", "--model", "gpt-5"), "unknown pretrained model", "smollm2-135m")
    assert_user_error(bmoe_here("serve"), "exactly one of --model")
    assert_user_error(bmoe_here("serve", "--model", "smollm2-135m", "--model-dir", tiny_run_dir), "exactly one")
    assert_user_error(bmoe_here("serve", "--model-dir", tmp_path, "--port", "0"), "lm.json")
    assert_user_error(bmoe_here("serve", "--model-dir", tiny_run_dir, "--experts", "4"), "--experts applies")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert_user_error(bmoe_here("serve", "--model-dir", tiny_run_dir, "--port", str(port)),
                          f"127.0.0.1:{port}")
