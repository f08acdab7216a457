"""Run an ASGI app with uvicorn in the current process, on a socket bound before the app is built.

Owns the listening socket and the server loop. Binding first lets a caller pass port 0, learn the
port the kernel picked, and build its app with its own URL (a storage node needs it for placement)
before serving. ``on_listening`` is called once uvicorn accepts connections; SIGINT and SIGTERM
stop the server gracefully (uvicorn's handlers), within ``graceful_timeout`` seconds.
"""

from __future__ import annotations

import socket
from collections.abc import Callable

import uvicorn
from starlette.types import ASGIApp


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (``port`` 0: any free port). ``OSError`` if it cannot bind."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)  # so asyncio sets TCP_NODELAY (net/http/tcp)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind((host, port))
        sock.listen(2048)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def url_of(sock: socket.socket) -> str:
    """``http://host:port`` of a bound socket."""
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


class _Server(uvicorn.Server):
    """uvicorn's server with a hook once it is accepting connections."""

    def __init__(self, config: uvicorn.Config, on_listening: Callable[[], None] | None) -> None:
        super().__init__(config)
        self._on_listening = on_listening

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if self._on_listening is not None and self.started:
            self._on_listening()


def serve(app: ASGIApp, sock: socket.socket, *, on_listening: Callable[[], None] | None = None,
          log_level: str = "warning", graceful_timeout: int = 5) -> None:
    """Serve ``app`` on the bound ``sock`` until SIGINT/SIGTERM (blocking); closes the socket after."""
    config = uvicorn.Config(app, log_level=log_level, access_log=False, lifespan="on",
                            timeout_graceful_shutdown=graceful_timeout, server_header=False)
    try:
        _Server(config, on_listening).run(sockets=[sock])
    finally:
        sock.close()
