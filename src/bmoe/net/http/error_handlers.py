"""The exception handlers every bmoe HTTP service installs: a Starlette HTTP exception (no such route, method not
allowed) and any other exception become the service's own refusal, named, never a traceback.

Must not know: which service, how it shapes or counts a refusal (its ``refuse``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

Refuse = Callable[[int, str, str], Response]  # (status, reason, message) -> the service's refusal


def error_handlers(refuse: Refuse, describe: Callable[[Exception], str] = lambda exc: type(exc).__name__
                   ) -> Mapping[Any, Callable[[Request, Exception], Any]]:
    """Starlette's ``exception_handlers``: an HTTP exception refused with ``no_route``, ``method_not_allowed`` or
    ``http_error``; anything else with ``internal`` and ``describe(exc)``."""
    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        reason = {404: "no_route", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return refuse(exc.status_code, reason, f"{request.method} {request.url.path}: {exc.detail}")

    async def internal_error(request: Request, exc: Exception) -> Response:
        return refuse(500, "internal", f"internal error: {describe(exc)}")

    return {HTTPException: http_error, Exception: internal_error}
