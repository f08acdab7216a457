"""Noticing a client that goes away while its request decodes, streaming or not, so the request is released at once.

:class:`EventStream` sends server-sent events while it listens for the client's disconnect, whatever the ASGI
server's spec version (Starlette's ``StreamingResponse`` notices it only at its next write under ASGI 2.4), and
calls ``on_close`` however it ends. :func:`unless_disconnected` awaits a result, or returns None as soon as the
client disconnects.

Must not know: the API, the engine.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterable, Awaitable, Callable, Mapping
from typing import TypeVar

import anyio
from starlette.requests import Request
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

T = TypeVar("T")


async def _disconnected(receive: Receive) -> None:
    """Return once the client has gone (the request's body already read)."""
    while (await receive())["type"] != "http.disconnect":
        pass


class EventStream(StreamingResponse):
    """A ``text/event-stream`` response that stops, and calls ``on_close``, when its client goes away."""

    def __init__(self, events: AsyncIterable[bytes], on_close: Callable[[], None],
                 headers: Mapping[str, str] | None = None) -> None:
        super().__init__(events, media_type="text/event-stream",
                         headers={"Cache-Control": "no-cache", **(headers or {})})
        self._on_close = on_close

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            async with anyio.create_task_group() as group:
                async def stream() -> None:
                    with contextlib.suppress(OSError):  # the client went away mid-write
                        await self.stream_response(send)
                    group.cancel_scope.cancel()

                group.start_soon(stream)
                await _disconnected(receive)
                group.cancel_scope.cancel()
        finally:
            self._on_close()


async def unless_disconnected(request: Request, result: Awaitable[T]) -> T | None:
    """``await result``, or None (``result`` cancelled) if the client disconnects first."""
    waiting = asyncio.ensure_future(result)
    gone = asyncio.ensure_future(_disconnected(request.receive))
    try:
        await asyncio.wait({waiting, gone}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        gone.cancel()
    if waiting.done():
        return waiting.result()
    waiting.cancel()
    return None
