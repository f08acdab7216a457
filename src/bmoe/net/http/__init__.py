"""HTTP plumbing every bmoe service and client shares: signed messages, the request guard, JSON bodies, serving.

Owns the transport, not any role: :mod:`.auth` (the signed wire format, replay guard, httpx auth), :mod:`.guard`
(the ASGI middleware that enforces it), :mod:`.json_body` (bounded JSON request bodies), :mod:`.serve` (uvicorn
on a socket bound first), :mod:`.tcp` (``TCP_NODELAY``), :mod:`.stats` (a node's counters). Knows nothing of
stores, validators or edges.
"""
