"""Owns rendering a model's chat template (a Jinja2 template, ``tokenizer.chat_template`` in a GGUF file) into the
prompt text the model was trained on, the way transformers' ``apply_chat_template`` renders it: a sandboxed
environment with ``trim_blocks`` and ``lstrip_blocks`` and the loop controls, the helpers templates call
(``raise_exception``, a ``tojson`` that does not escape HTML, ``strftime_now``), and the tokenizer's special tokens
(``bos_token``, ``eos_token``...) as variables beside ``messages`` and ``add_generation_prompt``.

Must not know: tokens, the model, where the template came from.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import jinja2
from jinja2.ext import loopcontrols
from jinja2.sandbox import ImmutableSandboxedEnvironment

from bmoe.data.errors import DataError

ROLES = ("system", "user", "assistant", "tool")


def _raise_exception(message: str) -> None:
    raise jinja2.exceptions.TemplateError(message)


def _tojson(value: Any, ensure_ascii: bool = False, indent: int | None = None, separators: Any = None,
            sort_keys: bool = False) -> str:
    return json.dumps(value, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def _strftime_now(format: str) -> str:
    return datetime.now().strftime(format)


@dataclass(frozen=True)
class ChatTemplate:
    """A chat template and the special tokens it may name (``{"bos_token": "<|im_start|>", ...}``)."""

    source: str
    special_tokens: dict[str, str] = field(default_factory=dict)

    def render(self, messages: list[dict[str, str]], add_generation_prompt: bool = True) -> str:
        """The prompt of ``messages`` (each ``{"role": ..., "content": ...}``), ending with the assistant's turn
        opened when ``add_generation_prompt``; one DataError line for a malformed message or template."""
        for message in messages:
            if not isinstance(message, dict) or message.get("role") not in ROLES \
                    or not isinstance(message.get("content"), str):
                raise DataError(f"a chat message must be {{'role': one of {', '.join(ROLES)}, 'content': text}}, "
                                f"got {message!r}")
        environment = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols])
        environment.filters["tojson"] = _tojson
        environment.globals.update(raise_exception=_raise_exception, strftime_now=_strftime_now)
        try:
            template = environment.from_string(self.source)
            return template.render(messages=messages, add_generation_prompt=add_generation_prompt,
                                   **self.special_tokens)
        except jinja2.exceptions.TemplateError as err:
            raise DataError(f"the chat template cannot render these messages: {err}") from None
