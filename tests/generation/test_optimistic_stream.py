"""An optimistic request gets its tokens before their chunk is verified, then marks: how many are final, and where
a rollback cut them. Applying the marks, what the client saw is the verified generation, the liar's tokens gone."""

from __future__ import annotations

from bmoe.lm.decoding.engine import TokenEvent
from bmoe.lm.decoding.stream_mark import PrefixMark
from tests.generation.helpers import PARAMS, PROMPTS, clean_tokens, liar, model, session


def letters(ids: list[int]) -> str:
    return "".join(chr(97 + token % 26) for token in ids)


def test_the_marks_turn_what_an_optimistic_client_saw_into_the_verified_generation() -> None:
    m = model()
    s = session(m, {4: liar(1, 2)}, decode=letters)
    seen: dict[int, list[object]] = {}
    requests = [s.decoding.submit_optimistic(p, q, lambda item: seen.setdefault(item.request, []).append(item))
                for p, q in zip(PROMPTS, PARAMS, strict=True)]
    while s.decoding.busy:
        s.decoding.step()
    cuts = 0
    for request, clean in zip(requests, clean_tokens(m), strict=True):
        tokens: list[int] = []
        text, verified = "", 0
        for item in seen[request]:
            if isinstance(item, TokenEvent):
                assert item.index == len(tokens)  # tokens arrive in order, from the last cut on
                tokens.append(item.token)
                text += item.text
            else:
                assert isinstance(item, PrefixMark)
                if item.cut_tokens is not None:
                    cuts += 1
                    assert item.cut_tokens < len(tokens)
                    tokens, text = tokens[:item.cut_tokens], text[:item.cut_text]
                assert verified <= item.verified <= len(tokens)
                verified = item.verified
        assert tokens == clean and verified == len(clean)
        assert text == s.decoding.result(request).text
    assert cuts > 0  # the liar's tokens reached an optimistic client and were cut back
