"""The OpenAI API's requests as bmoe serve reads them: a JSON body in, a checked :class:`GenerationRequest` out,
or an :class:`ApiError` in the API's shape (``{"error": {"message", "type", "param", "code"}}``) naming the field.

What is read: ``model``; ``prompt`` (a string, or token ids; one prompt) for completions, ``messages`` (roles
system, developer, user, assistant, tool; text content or text parts) for chat; ``max_tokens`` (and
``max_completion_tokens`` for chat), ``temperature`` [0, 2], ``top_p`` (0, 1], ``top_k`` (vLLM's extension),
``stop`` (a string or up to 4), ``seed``, ``stream`` and ``stream_options.include_usage``, ``echo``
(completions). ``n`` must be 1, and the features that would change what comes back and are not implemented
(``logprobs``, ``best_of`` > 1, penalties, ``logit_bias``, ``suffix``, ``tools``, a non-text
``response_format``) are refused when set, naming the parameter; null means the default, as in the API. Any
other field is ignored, as OpenAI-compatible servers ignore what they do not know; a known field of the wrong
type is refused.

Must not know: the model, tokenizers, the engine, HTTP.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

INVALID_REQUEST = "invalid_request_error"
MAX_STOPS = 4  # the API's limit
MAX_SEED = 2**63 - 1  # the API's seed is a 64-bit integer
ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant", "tool": "tool"}
ERROR_TYPES = {400: INVALID_REQUEST, 402: INVALID_REQUEST, 404: INVALID_REQUEST, 405: INVALID_REQUEST,
               413: INVALID_REQUEST, 500: "server_error", 503: "server_error"}


class ApiError(Exception):
    """A refusal in the OpenAI API's shape, with its HTTP status."""

    def __init__(self, status: int, message: str, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.param, self.code = status, message, param, code

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": ERROR_TYPES.get(self.status, INVALID_REQUEST),
                          "param": self.param, "code": self.code}}


@dataclass(frozen=True)
class GenerationRequest:
    """One completion or chat request, its fields checked (types and ranges; the model's limits come later)."""

    chat: bool
    model: str
    prompt: str | list[int] | None  # completions: text or token ids
    messages: list[dict[str, str]] | None  # chat: {"role", "content"} with text content
    max_tokens: int | None  # None: the server's default
    temperature: float
    top_p: float
    top_k: int | None
    stop: tuple[str, ...]
    seed: int | None  # None: the server draws one (and records it in the receipt)
    stream: bool
    include_usage: bool
    echo: bool
    optimistic: bool = False  # bmoe's extension {"bmoe": {"optimistic": true}}: tokens before their verification
    user: str | None = None  # the API's end-user id: on a server that charges for tokens, the paying account


def _invalid(param: str, expected: str, value: object) -> ApiError:
    return ApiError(400, f"Invalid type for '{param}': expected {expected}, but got {_json_type(value)}.", param,
                    "invalid_type")


def _json_type(value: object) -> str:
    names = {bool: "a boolean", int: "an integer", float: "a number", str: "a string", list: "an array",
             dict: "an object", type(None): "null"}
    return names.get(type(value), type(value).__name__)


def _out_of_range(param: str, allowed: str, value: object) -> ApiError:
    return ApiError(400, f"Invalid '{param}': {value!r} is not {allowed}.", param, "invalid_value")


def _unsupported(param: str, why: str) -> ApiError:
    return ApiError(400, f"'{param}' is not supported by bmoe serve: {why}.", param, "unsupported_parameter")


def _integer(body: dict[str, Any], name: str, default: int | None = None) -> int | None:
    value = body.get(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise _invalid(name, "an integer", value)
    return value


def _number(body: dict[str, Any], name: str, default: float) -> float:
    value = body.get(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _invalid(name, "a number", value)
    return float(value)


def _boolean(body: dict[str, Any], name: str) -> bool:
    value = body.get(name)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise _invalid(name, "a boolean", value)
    return value


def _optimistic(body: dict[str, Any], stream: bool) -> bool:
    """bmoe's extension object: ``{"bmoe": {"optimistic": true}}`` asks a verified server's stream for every token at
    once, the verified prefix marked (docs/serving.md)."""
    extension = body.get("bmoe")
    if extension is None:
        return False
    if not isinstance(extension, dict):
        raise _invalid("bmoe", "an object", extension)
    unknown = sorted(set(extension) - {"optimistic"})
    if unknown:
        raise ApiError(400, f"Unknown field {unknown[0]!r} in 'bmoe': it takes 'optimistic'.", "bmoe",
                       "unknown_parameter")
    optimistic = _boolean(extension, "optimistic")
    if optimistic and not stream:
        raise ApiError(400, "'bmoe.optimistic' applies to a stream: set 'stream' too.", "bmoe.optimistic",
                       "invalid_value")
    return optimistic


def _user(body: dict[str, Any]) -> str | None:
    value = body.get("user")
    if value is None or isinstance(value, str):
        return value
    raise _invalid("user", "a string", value)


def _stop(body: dict[str, Any]) -> tuple[str, ...]:
    value = body.get("stop")
    if value is None:
        return ()
    stops = [value] if isinstance(value, str) else value
    if not isinstance(stops, list) or not all(isinstance(s, str) for s in stops):
        raise _invalid("stop", "a string or an array of strings", value)
    if len(stops) > MAX_STOPS or any(not s for s in stops):
        raise _out_of_range("stop", f"at most {MAX_STOPS} non-empty strings", value)
    return tuple(stops)


def _stream_usage(body: dict[str, Any], stream: bool) -> bool:
    options = body.get("stream_options")
    if options is None:
        return False
    if not stream:
        raise ApiError(400, "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
                       "stream_options", "invalid_value")
    if not isinstance(options, dict):
        raise _invalid("stream_options", "an object", options)
    return _boolean(options, "include_usage")


def _refuse_unimplemented(body: dict[str, Any], chat: bool) -> None:
    """Refuse the known parameters whose effect bmoe serve does not implement, when they ask for it."""
    n = _integer(body, "n", 1)
    if n != 1:
        raise _unsupported("n", f"it generates one choice per request (n = 1), got n = {n}")
    asks_logprobs = _boolean(body, "logprobs") if chat else body.get("logprobs") is not None
    if asks_logprobs or body.get("top_logprobs") is not None:
        raise _unsupported("logprobs", "it returns no log probabilities")
    if not chat and _integer(body, "best_of", 1) != 1:
        raise _unsupported("best_of", "it generates one choice per request (best_of = 1)")
    for penalty in ("presence_penalty", "frequency_penalty"):
        if _number(body, penalty, 0.0) != 0:
            raise _unsupported(penalty, "only 0 is implemented")
    bias = body.get("logit_bias")
    if bias is not None and (not isinstance(bias, dict) or bias):
        raise _unsupported("logit_bias", "only an empty one is implemented")
    if not chat and body.get("suffix") not in (None, ""):
        raise _unsupported("suffix", "it generates after the prompt only")
    if chat and body.get("tools"):
        raise _unsupported("tools", "it generates text only")
    form = body.get("response_format")
    if chat and form is not None and (not isinstance(form, dict) or form.get("type") != "text"):
        raise _unsupported("response_format", "it generates free text only ({'type': 'text'})")


def _prompt(body: dict[str, Any]) -> str | list[int]:
    value = body.get("prompt")
    if isinstance(value, list) and len(value) == 1 and isinstance(value[0], str | list):
        value = value[0]  # one prompt in an array
    if isinstance(value, str):
        return value
    if isinstance(value, list) and value and all(isinstance(t, int) and not isinstance(t, bool) for t in value):
        return list(value)
    if isinstance(value, list) and value and all(isinstance(p, str | list) for p in value):
        raise _unsupported("prompt", "it generates for one prompt per request, not an array of several")
    if value is None:
        raise ApiError(400, "You must provide a 'prompt' parameter.", "prompt", "missing_required_parameter")
    raise _invalid("prompt", "a string, an array of token ids, or an array of one of these", value)


def _content(content: object, index: int) -> str:
    param = f"messages[{index}].content"
    if content is None:
        return ""  # an assistant turn that only called tools
    if isinstance(content, str):
        return content
    if isinstance(content, list) and all(isinstance(part, dict) for part in content):
        texts = []
        for part in content:
            if part.get("type") != "text" or not isinstance(part.get("text"), str):
                raise _unsupported(param, "only text content parts ({'type': 'text', 'text': ...}) are read")
            texts.append(part["text"])
        return "".join(texts)
    raise _invalid(param, "a string or an array of content parts", content)


def _messages(body: dict[str, Any]) -> list[dict[str, str]]:
    value = body.get("messages")
    if value is None:
        raise ApiError(400, "You must provide a 'messages' parameter.", "messages", "missing_required_parameter")
    if not isinstance(value, list) or not all(isinstance(m, dict) for m in value):
        raise _invalid("messages", "an array of message objects", value)
    if not value:
        raise ApiError(400, "'messages' must hold at least one message.", "messages", "empty_array")
    messages = []
    for index, message in enumerate(value):
        role = message.get("role")
        if role not in ROLES:
            raise _out_of_range(f"messages[{index}].role", f"one of {', '.join(ROLES)}", role)
        messages.append({"role": ROLES[role], "content": _content(message.get("content"), index)})
    return messages


def _max_tokens(body: dict[str, Any], chat: bool) -> int | None:
    name = "max_completion_tokens" if chat and body.get("max_completion_tokens") is not None else "max_tokens"
    value = _integer(body, name)
    least = 1 if chat else 0
    if value is not None and value < least:
        raise _out_of_range(name, f"an integer >= {least}", value)
    return value


def parse_request(body: object, chat: bool) -> GenerationRequest:
    """The checked request of a ``/v1/chat/completions`` (``chat``) or ``/v1/completions`` JSON body."""
    if not isinstance(body, dict):
        raise ApiError(400, f"The request body must be a JSON object, got {_json_type(body)}.", None, "invalid_body")
    model = body.get("model")
    if model is None:
        raise ApiError(400, "You must provide a 'model' parameter.", "model", "missing_required_parameter")
    if not isinstance(model, str):
        raise _invalid("model", "a string", model)
    _refuse_unimplemented(body, chat)
    temperature = _number(body, "temperature", 1.0)
    if not 0 <= temperature <= 2:
        raise _out_of_range("temperature", "a number in [0, 2]", body["temperature"])
    top_p = _number(body, "top_p", 1.0)
    if not 0 < top_p <= 1:
        raise _out_of_range("top_p", "a number in (0, 1]", body["top_p"])
    top_k = _integer(body, "top_k")
    if top_k == -1:
        top_k = None  # vLLM's "every token"
    if top_k is not None and top_k < 1:
        raise _out_of_range("top_k", "an integer >= 1 (or -1: every token)", top_k)
    seed = _integer(body, "seed")
    if seed is not None and not -MAX_SEED - 1 <= seed <= MAX_SEED:
        raise _out_of_range("seed", "a 64-bit integer", seed)
    stream = _boolean(body, "stream")
    return GenerationRequest(
        chat=chat, model=model, prompt=None if chat else _prompt(body), messages=_messages(body) if chat else None,
        max_tokens=_max_tokens(body, chat), temperature=temperature, top_p=top_p, top_k=top_k, stop=_stop(body),
        seed=seed, stream=stream, include_usage=_stream_usage(body, stream),
        echo=False if chat else _boolean(body, "echo"), optimistic=_optimistic(body, stream), user=_user(body))
