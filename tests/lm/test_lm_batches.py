"""Token ids as one int64 tensor, and nanoGPT's random windows: ``(B, T)`` inputs, targets one token on, the
same windows for the same generator seed."""

from __future__ import annotations

import pytest
import torch

from bmoe.lm.batches import encode_corpus
from bmoe.lm.char_tokenizer import CharTokenizer
from bmoe.lm.windows import random_windows

TEXT = "To be, or not to be, that is the question:\nWhether 'tis nobler in the mind to suffer\n"


def windows(seed: int, ids: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    ids = torch.arange(1000) if ids is None else ids
    return random_windows(ids, batch_size=8, block_size=16, generator=torch.Generator().manual_seed(seed))


def test_encoding_gives_one_int64_tensor_of_the_texts_ids() -> None:
    tokenizer = CharTokenizer.from_text(TEXT)
    ids = encode_corpus(tokenizer, TEXT)
    assert ids.dtype == torch.int64 and ids.shape == (len(TEXT),)
    assert ids.tolist() == tokenizer.encode(TEXT)


def test_targets_are_the_inputs_one_token_on() -> None:
    x, y = windows(0)
    assert x.shape == y.shape == (8, 16) and x.dtype == y.dtype == torch.int64
    assert torch.equal(y, x + 1)  # ids are their positions: every window is contiguous, its target the next one
    assert int(x.min()) >= 0 and int(y.max()) <= 999


def test_windows_of_real_ids_are_slices_of_them() -> None:
    ids = encode_corpus(CharTokenizer.from_text(TEXT), TEXT * 3)
    x, y = windows(5, ids)
    assert torch.equal(x[:, 1:], y[:, :-1])
    for row_x, row_y in zip(x.tolist(), y.tolist(), strict=True):
        starts = [s for s in range(ids.numel() - 16) if ids[s:s + 16].tolist() == row_x]
        assert any(ids[s + 1:s + 17].tolist() == row_y for s in starts)


def test_the_same_seed_gives_the_same_windows_and_another_seed_others() -> None:
    assert all(torch.equal(a, b) for a, b in zip(windows(7), windows(7), strict=True))
    assert not torch.equal(windows(7)[0], windows(8)[0])


def test_every_offset_can_be_drawn_including_the_last() -> None:
    ids = torch.arange(20)  # block 16: offsets 0..3, the last window ends on the last token
    starts = {int(x[0]) for x in random_windows(ids, 64, 16, torch.Generator().manual_seed(1))[0]}
    assert starts == {0, 1, 2, 3}


@pytest.mark.parametrize(("ids", "batch_size", "block_size", "needle"), [
    (torch.arange(16), 2, 16, "no window of 16 tokens"),
    (torch.arange(40).view(2, 20), 2, 4, "one stream"),
    (torch.arange(40), 2, 0, "must be positive"),
])
def test_windows_that_cannot_be_cut_are_refused(ids: torch.Tensor, batch_size: int, block_size: int,
                                                needle: str) -> None:
    with pytest.raises(ValueError, match=needle):
        random_windows(ids, batch_size, block_size, torch.Generator().manual_seed(0))
