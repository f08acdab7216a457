"""A binary frame: one JSON header and the raw bytes of the content-addressed objects it carries.

Owns the hot path's wire form (issue 24): a work item pushed to an edge with the objects it computes on,
and an edge's answer with the objects it committed, travel as one message each, the objects' canonical
bytes as they are (no JSON, no base64)::

    b"BMOE-FRAME-1\\n" | header length (4 bytes, big-endian) | header (UTF-8 JSON object)
    | the objects' bytes, back to back, in the order of the header's "objects": [[cid, size], ...]

:func:`decode_frame` checks the shape and hashes every object against its CID, so what it returns is
authentic content whoever sent it; a frame that is not one raises :class:`FrameError` (one line).

A signed message whose body is a frame signs its **head** (the magic, the length and the header, which lists
every object's CID and size), not the whole body: :func:`frame_digest`. Whoever reads the frame checks each
object against the CID the signed head lists (:func:`decode_frame`, the one reader of frames), so the body is
as bound to the signature as if all of it had been hashed (SHA-256 is the hash of the digest and of every
CID), and each object's bytes are hashed once on their way instead of three times (``docs/deployment.md``,
"Frames: signed by their head"). :func:`frame_parts` gives a frame as its head and its objects, to be sent
one after another without joining them.

Must not know what the header says beyond its ``objects`` list.
"""

from __future__ import annotations

import hashlib
import json
import struct
from collections.abc import Mapping
from typing import Any

from bmoe.storage.cid import parse_cid, verify_cid
from bmoe.storage.errors import InvalidCID

FRAME_MEDIA_TYPE = "application/x-bmoe-frame"
MAGIC = b"BMOE-FRAME-1\n"
MAX_HEADER = 4 * 1024 * 1024
HEAD_DOMAIN = b"BMOE-FRAME-HEAD-V1\n"  # what a frame's digest hashes before its head
_LENGTH = struct.Struct(">I")


class FrameError(ValueError):
    """Bytes that are not a well-formed frame, or an object that does not match its CID."""


def frame_parts(header: Mapping[str, Any], objects: Mapping[str, bytes]) -> list[bytes]:
    """:func:`encode_frame`'s bytes in pieces: the frame's head (magic, length, header), then each object."""
    if "objects" in header:
        raise ValueError("the frame's header lists its objects itself: leave out 'objects'")
    head = json.dumps({**header, "objects": [[cid, len(data)] for cid, data in objects.items()]},
                      separators=(",", ":")).encode()
    return [MAGIC + _LENGTH.pack(len(head)) + head, *objects.values()]


def encode_frame(header: Mapping[str, Any], objects: Mapping[str, bytes]) -> bytes:
    """``header`` (a JSON object without an ``objects`` key) and ``objects`` (CID -> bytes) as one frame."""
    return b"".join(frame_parts(header, objects))


def head_length(body: bytes) -> int | None:
    """How many leading bytes of ``body`` are a frame's head (magic, length, header), or None when ``body`` does
    not start with a whole one (not a frame, or cut short)."""
    start = len(MAGIC) + _LENGTH.size
    if len(body) < start or not body.startswith(MAGIC):
        return None
    (length,) = _LENGTH.unpack_from(body, len(MAGIC))
    if length > MAX_HEADER or start + length > len(body):
        return None
    return start + length


def frame_digest(body: bytes) -> str | None:
    """The hex digest a signature over a frame covers: SHA-256 of :data:`HEAD_DOMAIN` and the frame's head (which
    lists each object's CID and size; :func:`decode_frame` checks each object against it). None when ``body``
    does not start with a whole head: it is then signed as any body is, by the SHA-256 of all of it."""
    end = head_length(body)
    if end is None:
        return None
    return hashlib.sha256(HEAD_DOMAIN + bytes(memoryview(body)[:end])).hexdigest()


def is_frame(body: bytes) -> bool:
    return body.startswith(MAGIC)


def decode_frame(body: bytes) -> tuple[dict[str, Any], dict[str, bytes]]:
    """The header (without ``objects``) and the objects (CID -> bytes, each checked against its CID)."""
    if not body.startswith(MAGIC):
        raise FrameError("not a bmoe frame (bad magic)")
    start = len(MAGIC) + _LENGTH.size
    if len(body) < start:
        raise FrameError("truncated frame: no header length")
    (length,) = _LENGTH.unpack_from(body, len(MAGIC))
    if length > MAX_HEADER or start + length > len(body):
        raise FrameError(f"frame header of {length} bytes does not fit the frame")
    try:
        header = json.loads(body[start:start + length])
    except (UnicodeDecodeError, ValueError) as exc:
        raise FrameError(f"frame header is not JSON: {exc}") from None
    if not isinstance(header, dict) or not isinstance(header.get("objects"), list):
        raise FrameError("frame header must be a JSON object with an 'objects' list")
    listed = header.pop("objects")
    objects: dict[str, bytes] = {}
    offset = start + length
    view = memoryview(body)
    for entry in listed:
        if (not isinstance(entry, list) or len(entry) != 2 or not isinstance(entry[0], str)
                or isinstance(entry[1], bool) or not isinstance(entry[1], int) or entry[1] < 0):
            raise FrameError("each frame object is [cid, size]")
        try:
            cid = parse_cid(entry[0])
        except InvalidCID as exc:
            raise FrameError(f"frame object: {exc}") from None
        end = offset + entry[1]
        if end > len(body):
            raise FrameError(f"frame object {cid} runs past the end of the frame")
        data = bytes(view[offset:end])
        if not verify_cid(cid, data):
            raise FrameError(f"frame object {cid}: its bytes do not match the CID")
        objects[cid] = data
        offset = end
    if offset != len(body):
        raise FrameError(f"{len(body) - offset} bytes after the frame's last object")
    return header, objects
