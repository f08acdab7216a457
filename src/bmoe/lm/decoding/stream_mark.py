"""What an optimistic stream is told besides its tokens: how far they are final, and where to cut them back.

A decoder that checks its tokens after generating them (verified generation) may stream them at once to a client
that asks for it, and then send a :class:`PrefixMark` each time it has checked more: the number of the request's
generated tokens that are now final, and, when a check found a wrong token, the token count and the text length
the stream must be cut back to before the tokens that follow (generated again from there).

Must not know: how tokens are checked.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PrefixMark:
    """The request's first ``verified`` generated tokens are final; ``cut_tokens``/``cut_text`` (None: nothing to
    cut): drop the generated tokens from index ``cut_tokens`` on and the text from character ``cut_text`` on."""

    request: int
    verified: int
    cut_tokens: int | None = None
    cut_text: int | None = None
