"""From a checked API request to what the decoding engine takes: the prompt's token ids (the model's chat template
for chat, its tokenizer for text) and the :class:`SamplingParams`, held to the model's context and vocabulary, in
the API's errors when they do not fit. A request without a seed gets one drawn here (the receipt records it).

Must not know: HTTP, the engine, the response shapes.
"""

from __future__ import annotations

import secrets

from bmoe.data.errors import DataError
from bmoe.lm.decoding.sampling import SamplingError, SamplingParams
from bmoe.serve.openai_schema import ApiError, GenerationRequest
from bmoe.serve.served_model import ServedModel

DEFAULT_COMPLETION_TOKENS = 16  # the API's default max_tokens for completions (chat's: the rest of the context)


def context_error(served: ServedModel, request: GenerationRequest, prompt_tokens: int) -> ApiError | None:
    """The API's refusal of a prompt and ``max_tokens`` that do not fit the model's context, or None."""
    where = "messages" if request.chat else "prompt"
    if prompt_tokens >= served.context:
        return ApiError(400, f"This model's maximum context length is {served.context} tokens. However, your "
                             f"{where} resulted in {prompt_tokens} tokens. Please reduce the length of the {where}.",
                        where, "context_length_exceeded")
    if request.max_tokens is not None and prompt_tokens + request.max_tokens > served.context:
        return ApiError(400, f"This model's maximum context length is {served.context} tokens. However, you "
                             f"requested {prompt_tokens + request.max_tokens} tokens ({prompt_tokens} in the "
                             f"{where}, {request.max_tokens} in the completion). Please reduce the length of the "
                             f"{where} or completion.", "max_tokens", "context_length_exceeded")
    return None


def prompt_ids(served: ServedModel, request: GenerationRequest) -> list[int]:
    """The prompt's token ids: the chat template's rendering of the messages, the prompt's text encoded, or its
    token ids checked against the vocabulary."""
    try:
        if request.chat:
            assert request.messages is not None
            return served.chat_prompt(request.messages)
        if isinstance(request.prompt, list):
            vocab = served.model.config.vocab_size
            bad = next((t for t in request.prompt if not 0 <= t < vocab), None)
            if bad is not None:
                raise ApiError(400, f"prompt token {bad} is not in the vocabulary [0, {vocab})", "prompt",
                               "invalid_value")
            return request.prompt
        return served.tokenizer.encode(request.prompt or "")
    except DataError as err:  # a character outside the vocabulary, a message the template refuses
        raise ApiError(400, str(err), "messages" if request.chat else "prompt", "invalid_value") from None

def sampling_params(served: ServedModel, request: GenerationRequest, prompt: list[int]) -> SamplingParams:
    """The engine's sampling settings for ``request`` after ``prompt``: ``max_tokens`` held to the context (or its
    default), ``top_k`` to the vocabulary, a seed drawn when none was given, the model's end-of-sequence token."""
    if not prompt:
        raise ApiError(400, "The prompt is empty: give at least one token.", "prompt", "invalid_value")
    refusal = context_error(served, request, len(prompt))
    if refusal is not None:
        raise refusal
    room = served.context - len(prompt)
    max_tokens = request.max_tokens if request.max_tokens is not None else (
        room if request.chat else min(DEFAULT_COMPLETION_TOKENS, room))
    top_k = request.top_k
    vocab = served.model.config.vocab_size
    if top_k is not None and top_k > vocab:
        raise ApiError(400, f"Invalid 'top_k': {top_k} is more than the vocabulary's {vocab} tokens.", "top_k",
                       "invalid_value")
    seed = request.seed if request.seed is not None else secrets.randbits(63)  # recorded in the receipt
    try:
        return SamplingParams(max_tokens=max_tokens, temperature=request.temperature, top_k=top_k,
                              top_p=request.top_p, stop=request.stop, eos_token_id=served.eos_token_id,
                              seed=seed)
    except SamplingError as err:
        raise ApiError(400, str(err), None, "invalid_value") from None
