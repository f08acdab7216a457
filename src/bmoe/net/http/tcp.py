"""TCP settings for every bmoe connection: Nagle's algorithm off, on both ends.

Owns one fact and its helpers. An HTTP exchange here is a few small writes (a reply's head, then its
body; a request's head, then its body). With Nagle's algorithm on, the second small write waits for
the peer's ACK of the first, and the peer delays that ACK by up to 40 ms: every request on a
kept-alive connection would cost ~40 ms on loopback (measured: 44 ms per signed ``GET /health``,
2 ms with ``TCP_NODELAY``). asyncio only sets ``TCP_NODELAY`` on sockets whose protocol is
``IPPROTO_TCP``, so listening sockets are created with it explicitly; clients set it through
httpx's ``socket_options``.
"""

from __future__ import annotations

import socket

import httpx

NODELAY = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]


def client_transport() -> httpx.HTTPTransport:
    """An httpx transport whose connections send small writes at once."""
    return httpx.HTTPTransport(socket_options=NODELAY)


def async_client_transport() -> httpx.AsyncHTTPTransport:
    """The same for ``httpx.AsyncClient``."""
    return httpx.AsyncHTTPTransport(socket_options=NODELAY)
