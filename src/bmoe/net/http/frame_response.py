"""A reply whose body is a frame (:mod:`bmoe.net.frames`), sent as its head and then each object, never joined.

Owns one thing: handing the ASGI server a frame in pieces with its ``Content-Length`` declared, so a validator
pushing megabytes of work to an edge copies none of them into one body first. The signing guard
(:mod:`bmoe.net.http.guard`) signs the frame's digest as soon as it has the head, and lets the objects through.
Must not know what the frame carries.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from bmoe.net.frames import FRAME_MEDIA_TYPE, frame_parts


class FrameResponse(Response):
    """``header`` and ``objects`` (CID -> bytes) as a frame, its parts sent one after another."""

    media_type = FRAME_MEDIA_TYPE

    def __init__(self, header: Mapping[str, Any], objects: Mapping[str, bytes], status_code: int = 200) -> None:
        self.parts = frame_parts(header, objects)
        length = sum(len(part) for part in self.parts)
        super().__init__(None, status_code, headers={"content-length": str(length)}, media_type=FRAME_MEDIA_TYPE)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        last = len(self.parts) - 1
        for i, part in enumerate(self.parts):
            await send({"type": "http.response.body", "body": part, "more_body": i < last})
