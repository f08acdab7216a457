"""Stop strings on decoded text, as the OpenAI API has them, and the text a stream may show before the end.

A request stops at the first place any of its stop strings occurs in the text of its generated tokens; the
text returned ends before it (the stop string is left out). While a request runs, a stream shows only text
that cannot turn out to be part of a stop string (a tail that is a stop string's beginning is held back) nor
the start of a character still being decoded (a trailing U+FFFD: a byte-level tokenizer has given only some of a
character's bytes).

Must not know: tokens, tokenizers, the model.
"""

from __future__ import annotations

REPLACEMENT = "\ufffd"  # what a byte-level decoder shows for an incomplete UTF-8 character


def stop_index(text: str, stops: tuple[str, ...]) -> int | None:
    """Where the earliest stop string in ``text`` begins, or None if none occurs."""
    found = [index for index in (text.find(stop) for stop in stops) if index >= 0]
    return min(found) if found else None


def streamable_length(text: str, stops: tuple[str, ...]) -> int:
    """How much of ``text`` (of a request not yet finished) a stream may show: all but a tail that begins a stop
    string and all but trailing replacement characters."""
    held = 0
    for stop in stops:
        held = max([held] + [k for k in range(1, min(len(stop), len(text) + 1)) if text.endswith(stop[:k])])
    length = len(text) - held
    while length and text[length - 1] == REPLACEMENT:
        length -= 1
    return length
