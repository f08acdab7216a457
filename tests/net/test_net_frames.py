"""Binary frames: a header and content-addressed objects, every object checked against its CID."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from bmoe.net.frames import FrameError, decode_frame, encode_frame, is_frame
from bmoe.storage.cid import cid_of


def test_a_frame_round_trips_its_header_and_objects() -> None:
    objects = {cid_of(b"task rows"): b"task rows", cid_of(b""): b"", cid_of(b"w" * 5000): b"w" * 5000}
    frame = encode_frame({"work_id": 7, "phase": "result"}, objects)
    assert is_frame(frame)
    header, decoded = decode_frame(frame)
    assert header == {"work_id": 7, "phase": "result"}
    assert decoded == objects and list(decoded) == list(objects)


@pytest.mark.parametrize("damage, message", [
    (lambda f: f[:-1], "runs past the end"),
    (lambda f: f + b"x", "after the frame's last object"),
    (lambda f: f.replace(b"task rows", b"task rowz"), "do not match the CID"),
    (lambda f: b"NOT-A-FRAME" + f, "bad magic"),
    (lambda f: f[:15], "no header length"),
    (lambda f: f[:30], "does not fit"),
])
def test_a_damaged_frame_is_refused_in_one_line(damage: Callable[[bytes], bytes], message: str) -> None:
    frame = encode_frame({"work_id": 1}, {cid_of(b"task rows"): b"task rows"})
    with pytest.raises(FrameError, match=message):
        decode_frame(damage(frame))


def test_a_header_must_not_name_its_objects_itself() -> None:
    with pytest.raises(ValueError, match="objects"):
        encode_frame({"objects": []}, {})
