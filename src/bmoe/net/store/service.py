"""The storage node: a Starlette app serving a ``DirectoryStore`` over signed HTTP, with replication.

Owns the node's routes and its replication rule; authentication is :mod:`bmoe.net.http.guard`'s job.

=========================  =====================================================================
``PUT /blobs``             body = the blob; ``?cid=`` optional expected CID (400 ``cid_mismatch``);
                           stores it, forwards it to ``replication - 1`` peers (not when
                           ``?replica=1``: that marks a forwarded copy), replies
                           ``{"cid", "size", "replicas": [node URLs holding it]}``
``GET /blobs/{cid}``       the bytes (``application/octet-stream``, verified against the CID
                           before sending); a copy that fails verification is never sent: 500
                           ``corrupt`` naming the CID. A blob the node lacks is fetched from its
                           peers in rendezvous order (unless ``?local=1``), checked, and kept if
                           this node is one of the blob's responsible nodes (read repair)
``HEAD /blobs/{cid}``      200 with ``X-Bmoe-Size`` if held here (no peer look-up), else 404 (a
                           HEAD reply has no body: its signed status is the whole answer)
``DELETE /blobs/{cid}``    403 ``delete_disabled`` unless the node allows deletion; then deletes
                           the local copy only: ``{"deleted": bool}``
``GET /blobs``             local CIDs, sorted, paged: ``?after=CID&limit=N`` ->
                           ``{"cids": [...], "next": CID or null}``
``GET /health``            unauthenticated: ``{"status": "ok", "name", "address", "url", "replication"}``
``GET /stats``             the node's counters (:mod:`bmoe.net.http.stats`) and object count
``POST /batch``            body = a frame of blobs (:mod:`bmoe.net.frames`, each checked against its
                           CID): stored on this node only (the client sends a batch to each node
                           responsible for its blobs, ``HttpBlobStore.put_many``), replies
                           ``{"cids", "size"}``; 400 ``malformed_frame``; ``?sync=1``: replies once
                           every object stored so far is durable (as ``POST /sync``)
``POST /sync``             every object stored so far made durable (one ``syncfs``):
                           ``{"synced": paths}``
=========================  =====================================================================

Durability: a put is written atomically (temp file, rename) without its fsyncs; ``POST /sync`` makes all of
them durable at once, and the node does it by itself every ``SYNC_EVERY_S`` seconds and when it stops. A
validator syncs every node before it seals a block (``HttpBlobStore.sync``), so what a sealed block names is
durable; a crash loses at most objects of a block not sealed yet (:mod:`bmoe.storage.directory`'s batch mode).

Errors are JSON ``{"error", "reason"[, "cid"]}``: 400 ``invalid_cid`` / ``cid_mismatch`` /
``bad_query``, 404 ``not_found`` / ``no_route``, 405 ``method_not_allowed``, 500 ``corrupt`` /
``internal``, each counted as ``errors.<reason>``.

Replication: the nodes (this one and its peers) are ordered per CID by rendezvous hashing
(:mod:`bmoe.net.store.placement`). After storing a client's blob, the node walks that order, skipping
itself, and forwards the blob until ``replication - 1`` peers hold it, so a skipped or unreachable
peer is replaced by the next one. Forwarding is synchronous: the reply lists where the blob is.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp

from bmoe.ledger.keys import Identity
from bmoe.net.errors import UnauthenticResponse
from bmoe.net.frames import FrameError, decode_frame
from bmoe.net.http.auth import BLOB_MEDIA_TYPE, DEFAULT_MAX_BODY, DEFAULT_WINDOW_S, SIZE_HEADER, SignedAuth
from bmoe.net.http.error_handlers import error_handlers
from bmoe.net.http.guard import SignedRequestGuard
from bmoe.net.http.stats import Counters
from bmoe.net.http.tcp import async_client_transport
from bmoe.net.store.placement import normalize_url, rendezvous_order
from bmoe.storage import CorruptObject, DirectoryStore, InvalidCID, ObjectNotFound, cid_of, parse_cid, verify_cid

MAX_LIST_LIMIT = 10_000
SYNC_EVERY_S = 1.0  # the longest an object no client asked to sync stays volatile


@dataclass(frozen=True)
class NodeConfig:
    """Everything a storage node needs. ``url`` is the node's own canonical URL (its name in placement)."""

    data_dir: Path
    identity: Identity
    enrolled: Mapping[str, str]  # name -> address of every participant allowed to call this node
    url: str
    peers: tuple[str, ...] = ()
    replication: int = 2  # copies of each blob: the paper's storage layer tolerates one lost node
    max_body: int = DEFAULT_MAX_BODY
    window: float = DEFAULT_WINDOW_S
    peer_timeout: float = 10.0  # seconds per node-to-node request
    allow_delete: bool = False  # objects are ledger evidence: kept unless the operator says otherwise
    list_limit: int = 1000  # default page size of GET /blobs

    def __post_init__(self) -> None:
        url = normalize_url(self.url)
        peers = tuple(dict.fromkeys(normalize_url(peer) for peer in self.peers))
        if url in peers:
            raise ValueError(f"peer list names this node itself ({url})")
        if self.replication < 1:
            raise ValueError(f"replication must be at least 1, got {self.replication}")
        if self.replication > 1 + len(peers):
            raise ValueError(f"replication {self.replication} needs at least {self.replication - 1} peer(s), "
                             f"got {len(peers)}")
        if self.max_body < 1:
            raise ValueError(f"max_body must be positive, got {self.max_body}")
        object.__setattr__(self, "url", url)
        object.__setattr__(self, "peers", peers)


class StoreNode:
    """One storage node: its store, counters and routes. :meth:`app` gives the ASGI app to serve."""

    def __init__(self, config: NodeConfig) -> None:
        self.config = config
        self.store = DirectoryStore(config.data_dir, batch=True)  # durable at POST /sync (and every SYNC_EVERY_S)
        self.counters = Counters()
        self.nodes = (config.url, *config.peers)
        self._name = next((n for n, a in config.enrolled.items() if a == config.identity.address),
                          config.identity.name)
        self._peers: httpx.AsyncClient | None = None

    # --- wiring ------------------------------------------------------------------------------
    def app(self) -> ASGIApp:
        """The node as an ASGI app: routes behind the signed-request guard."""
        routes = [
            Route("/health", self.health, methods=["GET"]),
            Route("/stats", self.stats, methods=["GET"]),
            Route("/blobs", self.list_blobs, methods=["GET"]),
            Route("/blobs", self.put_blob, methods=["PUT"]),
            Route("/blobs/{cid}", self.get_blob, methods=["GET", "HEAD"]),
            Route("/blobs/{cid}", self.delete_blob, methods=["DELETE"]),
            Route("/sync", self.sync, methods=["POST"]),
            Route("/batch", self.put_batch, methods=["POST"]),
        ]
        app = Starlette(routes=routes, lifespan=self._lifespan, exception_handlers=error_handlers(self._error))
        return SignedRequestGuard(app, identity=self.config.identity, enrolled=set(self.config.enrolled.values()),
                                  counters=self.counters, max_body=self.config.max_body, window=self.config.window)

    @contextlib.asynccontextmanager
    async def _lifespan(self, app: Starlette) -> AsyncIterator[None]:
        auth = SignedAuth(self.config.identity, trusted=set(self.config.enrolled.values()))
        async with httpx.AsyncClient(auth=auth, timeout=self.config.peer_timeout,
                                     transport=async_client_transport()) as client:
            self._peers = client
            flusher = asyncio.create_task(self._flush_every(SYNC_EVERY_S))
            try:
                yield
            finally:
                flusher.cancel()
                await run_in_threadpool(self.store.flush)
        self._peers = None

    async def _flush_every(self, seconds: float) -> None:
        """Bound how long an object a client never asked to sync stays volatile."""
        while True:
            await asyncio.sleep(seconds)
            await run_in_threadpool(self.store.flush)

    def _error(self, status: int, reason: str, message: str, **extra: str) -> JSONResponse:
        self.counters.add(f"errors.{reason}")
        return JSONResponse({"error": message, "reason": reason, **extra}, status_code=status)

    def _cid(self, request: Request) -> str | JSONResponse:
        try:
            return parse_cid(request.path_params["cid"])
        except InvalidCID as exc:
            return self._error(400, "invalid_cid", str(exc))

    # --- routes ------------------------------------------------------------------------------
    async def health(self, request: Request) -> Response:
        body = {"status": "ok", "name": self._name, "address": self.config.identity.address, "url": self.config.url,
                "replication": self.config.replication}
        return JSONResponse(body)

    async def stats(self, request: Request) -> Response:
        objects = await run_in_threadpool(len, self.store)
        body = {"name": self._name, "address": self.config.identity.address, "url": self.config.url,
                "objects": objects, **self.counters.snapshot()}
        return JSONResponse(body)

    async def sync(self, request: Request) -> Response:
        """Make every object this node stored so far durable (one ``syncfs``): a validator calls it on every node
        before it seals a block naming what it stored."""
        count = await run_in_threadpool(self.store.flush)
        self.counters.add("syncs")
        return JSONResponse({"synced": count})

    async def put_batch(self, request: Request) -> Response:
        """Several blobs in one frame (:mod:`bmoe.net.frames`, each checked against its CID), stored on this node:
        the client sends each node the blobs it is responsible for (``HttpBlobStore.put_many``). With ``sync=1``
        the reply comes once they are durable (as ``POST /sync`` makes them: a write and its sync in one request)."""
        body = await request.body()
        try:
            _, blobs = await run_in_threadpool(decode_frame, body)
        except FrameError as exc:
            return self._error(400, "malformed_frame", f"batch refused: {exc}")
        await run_in_threadpool(lambda: [self.store.put(blob) for blob in blobs.values()])
        self.counters.add("blobs.stored", len(blobs))
        if request.query_params.get("sync") == "1":
            await run_in_threadpool(self.store.flush)
            self.counters.add("syncs")
        return JSONResponse({"cids": list(blobs), "size": sum(len(blob) for blob in blobs.values())})

    async def put_blob(self, request: Request) -> Response:
        body = await request.body()
        cid = await run_in_threadpool(cid_of, body)
        expected = request.query_params.get("cid")
        if expected is not None:
            try:
                wanted = parse_cid(expected)
            except InvalidCID as exc:
                return self._error(400, "invalid_cid", str(exc))
            if wanted != cid:
                return self._error(400, "cid_mismatch", f"body hashes to {cid}, not to the expected {wanted}",
                                   cid=wanted)
        await run_in_threadpool(self.store.put, body)
        self.counters.add("blobs.stored")
        replicas = [self.config.url]
        if request.query_params.get("replica") != "1":
            replicas += await self._replicate(cid, body)
        return JSONResponse({"cid": cid, "size": len(body), "replicas": replicas})

    async def get_blob(self, request: Request) -> Response:
        cid = self._cid(request)
        if isinstance(cid, Response):
            return cid
        if request.method == "HEAD":
            return await self._head(cid)
        try:
            data = await run_in_threadpool(self.store.get, cid)
        except CorruptObject:
            return self._error(500, "corrupt", f"the stored copy of {cid} is corrupt on this node", cid=cid)
        except ObjectNotFound:
            data = None if request.query_params.get("local") == "1" else await self._fetch_from_peers(cid)
            if data is None:
                return self._error(404, "not_found", f"object {cid} not found", cid=cid)
        self.counters.add("blobs.served")
        return Response(data, media_type=BLOB_MEDIA_TYPE)

    async def _head(self, cid: str) -> Response:
        try:
            size = await run_in_threadpool(self.store.size, cid)
        except ObjectNotFound:
            return self._error(404, "not_found", f"object {cid} not found", cid=cid)
        return Response(b"", media_type=BLOB_MEDIA_TYPE, headers={"content-length": str(size), SIZE_HEADER: str(size)})

    async def delete_blob(self, request: Request) -> Response:
        cid = self._cid(request)
        if isinstance(cid, Response):
            return cid
        if not self.config.allow_delete:
            return self._error(403, "delete_disabled", "this node does not delete objects", cid=cid)
        deleted = await run_in_threadpool(self.store.delete, cid)
        self.counters.add("blobs.deleted", int(deleted))
        return JSONResponse({"cid": cid, "deleted": deleted})

    async def list_blobs(self, request: Request) -> Response:
        try:
            after = parse_cid(request.query_params["after"]) if "after" in request.query_params else ""
            limit = int(request.query_params.get("limit", self.config.list_limit))
        except (InvalidCID, ValueError) as exc:
            return self._error(400, "bad_query", f"bad listing query: {exc}")
        if not 1 <= limit <= MAX_LIST_LIMIT:
            return self._error(400, "bad_query", f"limit must be between 1 and {MAX_LIST_LIMIT}")
        cids = await run_in_threadpool(lambda: [c for c in self.store.cids() if c > after][: limit + 1])
        page = cids[:limit]
        return JSONResponse({"cids": page, "next": page[-1] if len(cids) > limit else None})

    # --- replication -------------------------------------------------------------------------
    def _peer_order(self, cid: str) -> list[str]:
        return [node for node in rendezvous_order(cid, self.nodes) if node != self.config.url]

    async def _replicate(self, cid: str, body: bytes) -> list[str]:
        """Forward ``body`` to peers in rendezvous order until ``replication - 1`` of them hold it."""
        assert self._peers is not None
        done: list[str] = []
        for peer in self._peer_order(cid):
            if len(done) >= self.config.replication - 1:
                break
            try:
                reply = await self._peers.put(f"{peer}/blobs", params={"cid": cid, "replica": "1"}, content=body)
                ok = reply.status_code == 200 and reply.json().get("cid") == cid
            except (httpx.HTTPError, UnauthenticResponse, ValueError):
                ok = False
            self.counters.add("replication.sent" if ok else "replication.failed")
            if ok:
                done.append(peer)
        return done

    async def _fetch_from_peers(self, cid: str) -> bytes | None:
        """The verified bytes of ``cid`` from the first peer that has them; kept here if we are responsible."""
        assert self._peers is not None
        for peer in self._peer_order(cid):
            try:
                data = await self._fetch_one(peer, cid)
            except (httpx.HTTPError, UnauthenticResponse):
                continue
            if data is None or not await run_in_threadpool(verify_cid, cid, data):
                continue
            self.counters.add("blobs.fetched_from_peers")
            if self.config.url in rendezvous_order(cid, self.nodes)[: self.config.replication]:
                await run_in_threadpool(self.store.put, data)
                self.counters.add("blobs.repaired")
            return data
        return None

    async def _fetch_one(self, peer: str, cid: str) -> bytes | None:
        assert self._peers is not None
        async with self._peers.stream("GET", f"{peer}/blobs/{cid}", params={"local": "1"}) as reply:
            if reply.status_code != 200:
                return None
            chunks, size = [], 0
            async for chunk in reply.aiter_bytes():
                size += len(chunk)
                if size > self.config.max_body:
                    return None
                chunks.append(chunk)
        return b"".join(chunks)
