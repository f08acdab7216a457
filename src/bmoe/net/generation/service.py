"""A generation edge as an HTTP service: a :class:`~bmoe.protocol.generation.edges.GenerationEdge` (its experts,
its key, any attack it was started with) behind Starlette, the signed-request guard in front.

=====================  ===========================================================================================
``POST /compute``      body: one layer's calls (:mod:`bmoe.net.generation.wire`, a frame of rows by expert); reply:
                       the same form with each expert's outputs (n_e, d) (``application/x-bmoe-frame``)
``POST /commit``       body: JSON ``{"generation", "chunk", "slot", "inputs", "outputs"}`` (the inputs' SHA-256 in
                       hex, the outputs' CID); reply ``{"signature"}``: the edge's Ed25519 signature over
                       ``ledger.generation.call_message`` of them
``GET /health``        unauthenticated: ``{"status": "ok", "address", "layers", "experts", "hidden_size"}``
``GET /stats``         ``{"address", "rows_computed", "requests": {...}, "errors": {...}}``
=====================  ===========================================================================================

Every other request must be signed by a key of ``callers`` (the validators, :mod:`bmoe.net.http.guard`), and every
reply is signed by the edge. The edge holds no sequence state: each request stands alone. A bad request gets one
JSON error ``{"error", "reason"}``: 400 ``malformed_calls`` / ``unservable_calls`` / ``malformed_json`` /
``bad_commit``, 404 ``no_route``, 405 ``method_not_allowed``, 500 ``internal``.

Must not know: sequences, the chunk's decision, the ledger's state.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Collection
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager

import torch
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp

from bmoe.net.frames import FRAME_MEDIA_TYPE
from bmoe.net.generation.experts import ServedExperts
from bmoe.net.generation.wire import WireError, decode_calls, encode_calls
from bmoe.net.http.auth import DEFAULT_MAX_BODY, DEFAULT_WINDOW_S, Refusal
from bmoe.net.http.error_handlers import error_handlers
from bmoe.net.http.guard import SignedRequestGuard
from bmoe.net.http.json_body import read_json
from bmoe.net.http.stats import Counters
from bmoe.protocol.generation.edges import GenerationEdge
from bmoe.storage import InvalidCID, parse_cid

SHA256_HEX = re.compile(r"[0-9a-f]{64}")
MAX_GENERATION_ID = 200


class GenerationEdgeService:
    """The routes of one edge; :meth:`app` wires them behind the guard."""

    def __init__(self, edge: GenerationEdge, experts: ServedExperts, callers: Collection[str], *, threads: int = 1,
                 max_body: int = DEFAULT_MAX_BODY, window: float = DEFAULT_WINDOW_S) -> None:
        self.edge = edge
        self.threads = threads
        self.experts = experts
        self.callers = set(callers)
        self.max_body = max_body
        self.window = window
        self.counters = Counters()

    def app(self) -> ASGIApp:
        routes = [Route("/health", self.health, methods=["GET"]), Route("/stats", self.stats, methods=["GET"]),
                  Route("/compute", self.compute, methods=["POST"]), Route("/commit", self.commit, methods=["POST"])]
        app = Starlette(routes=routes, exception_handlers=error_handlers(self._error), lifespan=self._lifespan)
        return SignedRequestGuard(app, identity=self.edge.identity, enrolled=self.callers, counters=self.counters,
                                  max_body=self.max_body, window=self.window)

    # --- routes ----------------------------------------------------------------------------------------------

    async def health(self, request: Request) -> Response:
        config = self.experts.config
        return JSONResponse({"status": "ok", "address": self.edge.address, "layers": config.num_hidden_layers,
                             "experts": config.num_local_experts, "hidden_size": config.hidden_size})

    async def stats(self, request: Request) -> Response:
        return JSONResponse({"address": self.edge.address, "rows_computed": self.edge.rows_computed,
                             **self.counters.snapshot()})

    async def compute(self, request: Request) -> Response:
        try:
            layer, calls = decode_calls(await request.body())
        except WireError as exc:
            return self._error(400, "malformed_calls", str(exc))
        why = self.experts.refusal(layer, calls)
        if why is not None:
            return self._error(400, "unservable_calls", why)
        outputs = await asyncio.get_running_loop().run_in_executor(self._pool, self.edge.compute, layer, calls)
        self.counters.add("requests.compute")
        return Response(encode_calls(layer, outputs), media_type=FRAME_MEDIA_TYPE)

    async def commit(self, request: Request) -> Response:
        body = read_json(await request.body())
        if isinstance(body, Refusal):
            return self._error(body.status, body.reason, body.message)
        fields = _commit_fields(body, self.experts.config.num_slots)
        if isinstance(fields, str):
            return self._error(400, "bad_commit", fields)
        generation, chunk, slot, inputs, outputs = fields
        signature = self.edge.commit(generation, chunk, slot, inputs, outputs)
        self.counters.add("requests.commit")
        return JSONResponse({"signature": signature})

    # --- helpers ---------------------------------------------------------------------------------------------

    @asynccontextmanager
    async def _lifespan(self, app: Starlette) -> AsyncIterator[None]:
        """The calls are computed one at a time on one thread whose torch threads are the edge's: torch's thread
        setting is per OS thread (OpenMP), and a thread left at the default (every core) waits on busy cores
        (measured: a tiny call took 60 ms on a loaded 2-core machine in a fresh worker thread, 0.3 ms here)."""
        with ThreadPoolExecutor(1, "expert-calls", initializer=torch.set_num_threads,
                                initargs=(self.threads,)) as pool:
            self._pool = pool
            yield

    def _error(self, status: int, reason: str, message: str) -> JSONResponse:
        self.counters.add(f"errors.{reason}")
        return JSONResponse({"error": message, "reason": reason}, status_code=status)


def _commit_fields(body: object, slots: int) -> tuple[str, int, int, str, str] | str:
    """The commitment's fields, or why the body is not one."""
    if not isinstance(body, dict) or set(body) != {"generation", "chunk", "slot", "inputs", "outputs"}:
        return "a commitment is a JSON object with exactly generation, chunk, slot, inputs and outputs"
    generation, chunk, slot, inputs, outputs = (body[k] for k in ("generation", "chunk", "slot", "inputs", "outputs"))
    if not isinstance(generation, str) or not 0 < len(generation) <= MAX_GENERATION_ID:
        return f"generation must be a string of 1 to {MAX_GENERATION_ID} characters"
    for name, value, bound in (("chunk", chunk, None), ("slot", slot, slots)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0 or (bound is not None and value >= bound):
            return f"{name} must be an integer >= 0{f' below {bound}' if bound is not None else ''}, got {value!r}"
    if not isinstance(inputs, str) or not SHA256_HEX.fullmatch(inputs):
        return "inputs must be the inputs' SHA-256 (64 lower-case hex digits)"
    try:
        parse_cid(outputs if isinstance(outputs, str) else "")
    except InvalidCID as exc:
        return f"outputs must be the outputs' CID: {exc}"
    return generation, chunk, slot, inputs, outputs
