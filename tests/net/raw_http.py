"""Requests no well-behaved client would send, written straight onto a socket."""

from __future__ import annotations

import http.client


def declared_too_large(host: str, port: int, method: str, path: str, length: int) -> tuple[int, bytes]:
    """Announce a body of ``length`` bytes and send none of it: the server must answer from the headers alone."""
    conn = http.client.HTTPConnection(host, port, timeout=10)
    try:
        conn.putrequest(method, path)
        conn.putheader("Content-Length", str(length))
        conn.endheaders()
        reply = conn.getresponse()
        return reply.status, reply.read()
    finally:
        conn.close()
