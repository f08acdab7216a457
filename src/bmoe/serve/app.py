"""The OpenAI-compatible HTTP API of bmoe serve (Starlette): ``GET /v1/models``, ``GET /v1/models/{id}``,
``POST /v1/completions``, ``POST /v1/chat/completions``, whole or streamed as server-sent events; bmoe's own
``GET /bmoe/receipts/{id}`` (the receipts of the last responses) and ``GET /bmoe/stats`` (the scheduler's counts).

A request is read (``openai_schema.py``), made into the engine's prompt and sampling settings
(``engine_request.py``) and handed to the :class:`~bmoe.serve.scheduler.Scheduler`; its tokens come back as the
engine decodes them. Every response carries its receipt (``receipt.py``) in the ``bmoe`` field (a stream's last
chunk) and its id in the ``X-Bmoe-Receipt`` header. Every refusal is the API's error shape with its status; a
client that goes away has its request released in the engine.

Must not know: how the model was loaded, where the experts run, the ledger.
"""

from __future__ import annotations

import secrets
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bmoe.lm.decoding.stream_mark import PrefixMark
from bmoe.net.http.auth import Refusal
from bmoe.net.http.json_body import read_json
from bmoe.serve.client_gone import EventStream, unless_disconnected
from bmoe.serve.engine_request import prompt_ids, sampling_params
from bmoe.serve.openai_responses import DONE, ResponseShape, model_card, models_list, server_sent, usage
from bmoe.serve.openai_schema import ApiError, GenerationRequest, parse_request
from bmoe.serve.receipt import Receipt
from bmoe.serve.scheduler import Failed, Finished, Scheduler, Ticket
from bmoe.serve.served_model import ServedModel

MAX_BODY_BYTES = 16 * 2**20  # a prompt of a few million characters; more is a 413
RECEIPTS_KEPT = 4096  # receipts GET /bmoe/receipts/{id} still knows
RECEIPT_HEADER = "X-Bmoe-Receipt"
ReceiptSink = Callable[[dict[str, Any], str, str], None]  # (receipt, prompt text, completion text) -> None
ReceiptAmend = Callable[[dict[str, Any], str, str], dict[str, Any]]  # the same -> the receipt to send (a quality entry)


class ServeApp:
    """The routes' state: the model, its scheduler, the receipts kept."""

    def __init__(self, served: ServedModel, scheduler: Scheduler, on_receipt: ReceiptSink | None = None,
                 amend_receipt: ReceiptAmend | None = None, charges: bool = False) -> None:
        self.served = served
        self.charges = charges  # every request names its paying account in ``user`` (bmoe serve --payments)
        self.scheduler = scheduler
        self.amend_receipt = amend_receipt  # e.g. the quality layer's scores (lm/quality, docs/platform.md)
        self.on_receipt = on_receipt  # each receipt and its texts (a verified server appends them to its ledger dir)
        self.created = int(time.time())
        self.receipts: OrderedDict[str, dict[str, Any]] = OrderedDict()

    # reading a request

    async def _read(self, http: Request, chat: bool) -> GenerationRequest:
        body = bytearray()
        async for part in http.stream():
            body += part
            if len(body) > MAX_BODY_BYTES:
                raise ApiError(413, f"The request body is larger than {MAX_BODY_BYTES} bytes.", None,
                               "body_too_large")
        parsed = read_json(bytes(body))
        if isinstance(parsed, Refusal):
            raise ApiError(400, f"We could not parse the JSON body of your request: {parsed.message}", None,
                           parsed.reason)
        request = parse_request(parsed, chat)
        if request.model != self.served.name:
            raise ApiError(404, f"The model `{request.model}` does not exist: this server serves "
                                f"`{self.served.name}`.", "model", "model_not_found")
        return request

    # answering

    def _receipt(self, shape: ResponseShape, ticket: Ticket, finished: Finished) -> dict[str, Any]:
        receipt = Receipt(shape.id, self.served.identity, ticket.params, ticket.prompt, finished.completion.tokens,
                          finished.completion.finish_reason or "stop", finished.calls, finished.verification,
                          finished.ledger).to_json()
        prompt_text = self.served.tokenizer.decode(ticket.prompt)
        if self.amend_receipt is not None:
            receipt = self.amend_receipt(receipt, prompt_text, finished.completion.text)
        self.receipts[shape.id] = receipt
        if self.on_receipt is not None:
            self.on_receipt(receipt, prompt_text, finished.completion.text)
        while len(self.receipts) > RECEIPTS_KEPT:
            self.receipts.popitem(last=False)
        return receipt

    async def generate(self, http: Request, chat: bool) -> Response:
        request = await self._read(http, chat)
        prompt = prompt_ids(self.served, request)
        params = sampling_params(self.served, request, prompt)
        prefix = "chatcmpl-" if chat else "cmpl-"
        shape = ResponseShape(chat, prefix + secrets.token_hex(12), int(time.time()), self.served.name,
                              "bmoe-" + self.served.identity["weights_cid"][-16:])
        echo = self.served.tokenizer.decode(prompt) if request.echo else ""
        if self.charges and not request.user:
            raise ApiError(402, "This server charges for generated tokens: name the paying account in 'user'.",
                           "user", "payment_required")
        ticket = self.scheduler.submit(prompt, params, request.optimistic, request.user if self.charges else None)
        headers = {RECEIPT_HEADER: shape.id}
        if request.stream:
            return EventStream(self._stream(shape, ticket, request.include_usage, echo),
                               lambda: self.scheduler.cancel(ticket), headers)
        last = await unless_disconnected(http, _last_item(ticket))
        if last is None:
            self.scheduler.cancel(ticket)
            return Response(status_code=499)  # nobody reads it
        if isinstance(last, Failed):
            raise ApiError(failed_status(last), last.message, None, None)
        completion = last.completion
        body = shape.body(echo + completion.text, completion.finish_reason or "stop",
                          usage(len(prompt), len(completion.tokens)),
                          {"receipt": self._receipt(shape, ticket, last)})
        return JSONResponse(body, headers=headers)

    async def _stream(self, shape: ResponseShape, ticket: Ticket, include_usage: bool, echo: str
                      ) -> AsyncIterator[bytes]:
        if shape.chat:
            yield server_sent(shape.chunk(None, include_usage=include_usage, role=True))
        if echo:
            yield server_sent(shape.chunk(echo, include_usage=include_usage))
        async for item in ticket:
            if isinstance(item, Failed):
                yield server_sent(ApiError(failed_status(item), item.message).body())
            elif isinstance(item, Finished):
                completion = item.completion
                extension = {"bmoe": {"receipt": self._receipt(shape, ticket, item)}}
                last = shape.chunk(None if shape.chat else "", completion.finish_reason or "stop", include_usage)
                if include_usage:
                    yield server_sent(last)
                    last = shape.usage_chunk(usage(len(ticket.prompt), len(completion.tokens)))
                yield server_sent({**last, **extension})
            elif isinstance(item, PrefixMark):
                mark: dict[str, Any] = {"verified_tokens": item.verified}
                if item.cut_tokens is not None:
                    mark["cut"] = {"tokens": item.cut_tokens, "text_chars": item.cut_text}
                yield server_sent({**shape.chunk(None if shape.chat else "", include_usage=include_usage),
                                   "bmoe": mark})
            elif item.text:
                yield server_sent(shape.chunk(item.text, include_usage=include_usage))
        yield DONE

    async def completions(self, http: Request) -> Response:
        return await self.generate(http, chat=False)

    async def chat_completions(self, http: Request) -> Response:
        return await self.generate(http, chat=True)

    async def models(self, http: Request) -> Response:
        return JSONResponse(models_list([model_card(self.served.name, self.created, self.served.identity)]))

    async def model(self, http: Request) -> Response:
        name = http.path_params["model"]
        if name != self.served.name:
            raise ApiError(404, f"The model `{name}` does not exist.", "model", "model_not_found")
        return JSONResponse(model_card(name, self.created, self.served.identity))

    async def receipt(self, http: Request) -> Response:
        receipt = self.receipts.get(http.path_params["id"])
        if receipt is None:
            raise ApiError(404, f"No receipt {http.path_params['id']!r} (unknown, or older than the last "
                                f"{RECEIPTS_KEPT}).", "id", "receipt_not_found")
        return JSONResponse(receipt)

    async def stats(self, http: Request) -> Response:
        return JSONResponse(self.scheduler.stats.to_json())


async def _last_item(ticket: Ticket) -> Finished | Failed:
    async for item in ticket:
        if isinstance(item, Finished | Failed):
            return item
    raise AssertionError("a ticket ends with Finished or Failed")


async def _api_error(http: Request, err: Exception) -> Response:
    assert isinstance(err, ApiError)
    return JSONResponse(err.body(), status_code=err.status)


async def _http_error(http: Request, err: Exception) -> Response:
    assert isinstance(err, HTTPException)
    message = f"{http.method} {http.url.path}: {err.detail}"
    return JSONResponse(ApiError(err.status_code, message, None, None).body(), status_code=err.status_code)


def failed_status(failed: Failed) -> int:
    return failed.status or (400 if failed.refused else 500)


def build_app(served: ServedModel, scheduler: Scheduler, on_receipt: ReceiptSink | None = None,
              on_stop: Callable[[], None] | None = None, amend_receipt: ReceiptAmend | None = None,
              charges: bool = False) -> Starlette:
    """The API over ``served``, decoding on ``scheduler`` (started and stopped with the app); ``on_receipt`` is
    called with every receipt made, the prompt's text and the completion's; ``on_stop`` after the scheduler stops (the
app's shutdown: uvicorn re-raises the stopping signal after it, so nothing after ``serve`` would run);
``amend_receipt`` may add to every receipt before it is sent and kept; ``charges``: every request must name its paying
account in ``user`` (402 without), which the scheduler's decoder bills."""
    state = ServeApp(served, scheduler, on_receipt, amend_receipt, charges)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        scheduler.start()
        try:
            yield
        finally:
            scheduler.stop()
            if on_stop is not None:
                on_stop()

    routes = [Route("/v1/models", state.models, methods=["GET"]),
              Route("/v1/models/{model:path}", state.model, methods=["GET"]),
              Route("/v1/completions", state.completions, methods=["POST"]),
              Route("/v1/chat/completions", state.chat_completions, methods=["POST"]),
              Route("/bmoe/receipts/{id}", state.receipt, methods=["GET"]),
              Route("/bmoe/stats", state.stats, methods=["GET"])]
    return Starlette(routes=routes, lifespan=lifespan,
                     exception_handlers={ApiError: _api_error, HTTPException: _http_error})
