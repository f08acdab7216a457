"""Where a blob lives: node URLs in canonical form and rendezvous (highest-random-weight) hashing.

Owns the one rule that clients and storage nodes must agree on without talking: the order of
nodes for a CID is the nodes sorted by ``sha256(node_url + "\\n" + cid)``, highest first (ties,
impossible in practice, broken by the URL). The first ``replication`` nodes of that order are the
blob's *responsible* nodes. Adding or removing a node moves only the blobs whose order it enters
or leaves (Thaler & Ravishankar, 1998). Nodes are named by their canonical URL, so every party
must list a node under the same URL (see :func:`normalize_url`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

import httpx


def normalize_url(url: str) -> str:
    """``scheme://host:port`` of a storage node URL; ``ValueError`` with a one-line reason if it is not one."""
    try:
        parsed = httpx.URL(url.strip())
    except (httpx.InvalidURL, TypeError) as exc:
        raise ValueError(f"invalid node URL {url!r}: {exc}") from None
    if parsed.scheme not in ("http", "https"):
        raise ValueError(f"invalid node URL {url!r}: scheme must be http or https")
    if not parsed.host:
        raise ValueError(f"invalid node URL {url!r}: no host")
    if parsed.path not in ("", "/") or parsed.query or parsed.fragment or parsed.userinfo:
        raise ValueError(f"invalid node URL {url!r}: must be scheme://host:port with nothing after")
    host = f"[{parsed.host}]" if ":" in parsed.host else parsed.host.lower()
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    return f"{parsed.scheme}://{host}:{port}"


def _weight(node: str, cid: str) -> bytes:
    return hashlib.sha256(f"{node}\n{cid}".encode()).digest()


def rendezvous_order(cid: str, nodes: Iterable[str]) -> list[str]:
    """``nodes`` (canonical URLs) in the order they should hold ``cid`` (canonical CID), best first."""
    return sorted(set(nodes), key=lambda node: (_weight(node, cid), node), reverse=True)


def responsible_nodes(cid: str, nodes: Iterable[str], replication: int) -> list[str]:
    """The ``replication`` nodes that should hold ``cid``."""
    return rendezvous_order(cid, nodes)[:replication]
