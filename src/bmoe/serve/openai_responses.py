"""The OpenAI API's response shapes, as JSON-ready dicts: ``/v1/models``, a completion and a chat completion
(whole, or as the chunks of a stream), usage, and server-sent events (``data: {...}``, ``data: [DONE]``).

A completion's choice carries ``text``; a chat completion's a ``message`` (whole) or a ``delta`` (a chunk: the
first one opens the assistant's turn with ``{"role": "assistant", "content": ""}``, the last one is empty and
carries ``finish_reason``). With ``stream_options.include_usage`` every chunk has ``"usage": null`` and one more
chunk, with no choices, carries the usage. bmoe's extension (the receipt) is the ``bmoe`` field.

Must not know: the model, the engine, HTTP.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

DONE = b"data: [DONE]\n\n"


def usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    return {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens}


def models_list(cards: list[dict[str, Any]]) -> dict[str, Any]:
    return {"object": "list", "data": cards}


def model_card(name: str, created: int, identity: dict[str, Any]) -> dict[str, Any]:
    """A model as ``/v1/models`` lists it, with its identity (the receipt's ``model``) in the ``bmoe`` field."""
    return {"id": name, "object": "model", "created": created, "owned_by": "bmoe", "bmoe": identity}


def server_sent(payload: dict[str, Any]) -> bytes:
    """One server-sent event carrying ``payload`` as compact JSON."""
    return b"data: " + json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode() + b"\n\n"


@dataclass(frozen=True)
class ResponseShape:
    """The fields every body and chunk of one response shares, and how its choices look."""

    chat: bool
    id: str
    created: int
    model: str
    fingerprint: str  # the API's system_fingerprint: which weights answered

    def _envelope(self, chunk: bool) -> dict[str, Any]:
        kind = ("chat.completion.chunk" if chunk else "chat.completion") if self.chat else "text_completion"
        return {"id": self.id, "object": kind, "created": self.created, "model": self.model,
                "system_fingerprint": self.fingerprint}

    def body(self, text: str, finish_reason: str, used: dict[str, int], extension: dict[str, Any]) -> dict[str, Any]:
        """The whole response of a request that did not stream."""
        if self.chat:
            choice = {"index": 0, "message": {"role": "assistant", "content": text, "refusal": None},
                      "logprobs": None, "finish_reason": finish_reason}
        else:
            choice = {"index": 0, "text": text, "logprobs": None, "finish_reason": finish_reason}
        return {**self._envelope(False), "choices": [choice], "usage": used, "bmoe": extension}

    def chunk(self, text: str | None, finish_reason: str | None = None, include_usage: bool = False,
              role: bool = False) -> dict[str, Any]:
        """One chunk of a stream: ``text`` (None: none, as in a chat's last chunk), ``role``: a chat's first."""
        if self.chat:
            delta: dict[str, Any] = {"role": "assistant", "content": ""} if role else {}
            if text is not None and not role:
                delta["content"] = text
            choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
        else:
            choice = {"index": 0, "text": text or "", "logprobs": None, "finish_reason": finish_reason}
        chunk = {**self._envelope(True), "choices": [choice]}
        return {**chunk, "usage": None} if include_usage else chunk

    def usage_chunk(self, used: dict[str, int]) -> dict[str, Any]:
        """The stream's last chunk when usage was asked for: no choices, the usage."""
        return {**self._envelope(True), "choices": [], "usage": used}
