"""ASGI middleware that admits only signed requests from enrolled keys and signs every reply.

Owns the server side of :mod:`bmoe.net.http.auth`. For each HTTP request, in order:

1. paths in ``public_paths`` (``/health``) skip authentication; their replies are still signed;
2. a declared ``Content-Length`` above ``max_body`` is refused before any byte is read (413
   ``too_large``);
3. the authentication headers are parsed (401 ``missing_auth`` / ``malformed_auth``);
4. the sender must be enrolled (403 ``unknown_key``), the signature valid (401 ``bad_signature``),
   the timestamp within the window (401 ``stale_timestamp``), the nonce fresh (409 ``replayed``;
   503 ``busy`` if the nonce cache is full);
5. the body is read, counted as it arrives and refused once it passes ``max_body`` (413
   ``too_large``: this catches chunked bodies that declare no length);
6. the body must hash to the signed ``X-Bmoe-Content-Sha256`` (401 ``body_mismatch``); a frame's body to its
   digest, the hash of its head (:func:`~bmoe.net.http.auth.content_digest`): the route reads it with
   :func:`~bmoe.net.frames.decode_frame`, which checks every object against the CID the head lists.

The app then sees the body (at most ``max_body`` bytes, held in memory) and the sender's address
as ``scope["bmoe.sender"]``. Every refusal is a JSON ``{"error", "reason"}`` body, counted as
``errors.<reason>`` in the node's :class:`~bmoe.net.http.stats.Counters`. Before refusing, the guard
reads and discards what is left of the body (up to ``max_body`` more bytes), so a client that is
still sending sees the refusal instead of a reset connection.

A frame's reply is signed once the app has sent its head, and its objects then pass through as the app sends
them, never joined into one body (:class:`~bmoe.net.http.frame_response.FrameResponse`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Collection
from typing import Any

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bmoe.ledger.keys import Identity
from bmoe.net.frames import FRAME_MEDIA_TYPE, head_length
from bmoe.net.http.auth import (
    DEFAULT_MAX_BODY,
    DEFAULT_WINDOW_S,
    NONCE_HEADER,
    SIZE_HEADER,
    NonceCache,
    Refusal,
    check_request,
    content_digest,
    is_nonce,
    needs_signature,
    read_request_head,
    sign_response,
)
from bmoe.net.http.stats import Counters


class _Disconnected(Exception):
    """The client went away while sending its body."""


class SignedRequestGuard:
    """Wraps an ASGI app: authenticate, bound and hash-check requests; sign replies."""

    def __init__(self, app: ASGIApp, *, identity: Identity, enrolled: Collection[str], counters: Counters,
                 max_body: int = DEFAULT_MAX_BODY, window: float = DEFAULT_WINDOW_S,
                 public_paths: Collection[str] = ("/health",), clock: Callable[[], float] = time.time) -> None:
        self.app = app
        self.identity = identity
        self.enrolled = frozenset(enrolled)
        self.counters = counters
        self.max_body = max_body
        self.window = window
        self.public_paths = frozenset(public_paths)
        self.clock = clock
        self.nonces = NonceCache(window)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        nonce = headers.get(NONCE_HEADER, "")
        send = self._signing(scope["method"], nonce if is_nonce(nonce) else "", send)
        if scope["path"] in self.public_paths:
            await self.app(scope, receive, send)
            return
        try:
            verdict = await self._admit(scope, headers, receive)
        except _Disconnected:
            return
        if isinstance(verdict, Refusal):
            self.counters.add("requests.refused")
            self.counters.add(f"errors.{verdict.reason}")
            await _send_json(send, verdict.status, verdict.body())
            return
        sender, body = verdict
        self.counters.add("requests.accepted")
        await self.app({**scope, "bmoe.sender": sender}, _replay(body, receive), send)

    async def _admit(self, scope: Scope, headers: Headers, receive: Receive) -> Refusal | tuple[str, bytes]:
        raw_path = scope.get("raw_path") or scope["path"].encode("utf-8")
        parsed = read_request_head(scope["method"], raw_path.decode("latin-1"),
                                   scope.get("query_string", b"").decode("latin-1"), headers.get("host", ""), headers)
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_body:
            return _too_large(self.max_body)  # refused before reading (and without draining) the body
        if isinstance(parsed, Refusal):
            await _drain(receive, self.max_body)
            return parsed
        head, signature = parsed
        now = self.clock()
        refusal = check_request(head, signature, self.enrolled, now, self.window)
        if refusal is None:
            refusal = self.nonces.admit(head.address, head.nonce, head.timestamp, now)
        if refusal is not None:
            await _drain(receive, self.max_body)
            return refusal
        body = await _read_body(receive, self.max_body)
        if body is None:
            return _too_large(self.max_body)
        if content_digest(body, headers.get("content-type", "")) != head.body_sha256:
            return Refusal(401, "body_mismatch", "body does not hash to the signed X-Bmoe-Content-Sha256")
        return head.address, body

    def _signing(self, method: str, nonce: str, send: Send) -> Send:
        """``send`` that holds back each signable reply until its body is complete (a frame's: until its head is
        complete), then signs it; what a frame's app sends after its head passes through."""
        start: Message | None = None
        content_type = ""
        chunks: list[bytes] = []

        async def signing_send(message: Message) -> None:
            nonlocal start, content_type
            if message["type"] == "http.response.start":
                headers = Headers(raw=message["headers"])
                content_type = headers.get("content-type", "")
                if needs_signature(method, message["status"], content_type):
                    start = message
                    return
            if start is None or message["type"] != "http.response.body":
                await send(message)
                return
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
            frame = content_type.startswith(FRAME_MEDIA_TYPE) and method != "HEAD"
            if more and not (frame and head_length(chunks[0] if len(chunks) == 1 else b"".join(chunks))):
                return
            body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
            chunks.clear()
            size = Headers(raw=start["headers"]).get(SIZE_HEADER, "")
            seen = b"" if method == "HEAD" else body  # a HEAD reply reaches the client without its body
            extra = sign_response(self.identity, start["status"], nonce, seen, size, content_type)
            raw = [(key.encode("latin-1"), value.encode("latin-1")) for key, value in extra.items()]
            await send({**start, "headers": [*start["headers"], *raw]})
            start = None  # signed: the rest of a frame's body passes through
            await send({"type": "http.response.body", "body": body, "more_body": more})

        return signing_send


def _too_large(limit: int) -> Refusal:
    return Refusal(413, "too_large", f"request body is larger than this node's limit of {limit} bytes")


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    """The whole body, or None once it passes ``limit`` bytes (the rest is then drained, bounded)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _Disconnected
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            if message.get("more_body", False):
                await _drain(receive, limit)
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _drain(receive: Receive, budget: int) -> None:
    """Read and drop what is left of the body, at most ``budget`` bytes."""
    while budget >= 0:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _Disconnected
        budget -= len(message.get("body", b""))
        if not message.get("more_body", False):
            return


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that hands the app the already-read body, then defers to the real one."""
    delivered = False

    async def replay() -> Message:
        nonlocal delivered
        if delivered:
            return await receive()
        delivered = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


async def _send_json(send: Send, status: int, content: dict[str, Any]) -> None:
    body = json.dumps(content).encode("utf-8")
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode("latin-1"))]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
