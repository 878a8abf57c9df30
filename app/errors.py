"""How errors are answered: in JSON, never with a traceback (main.py installs these).

* a request that fails validation: 422 listing the problems, without the input;
* a method the path does not have: 405 whose Allow lists every method of the path;
* data the database refused (psycopg2.DataError): 422;
* no connection free, the database unreachable or no longer taking writes: 503
  ``database unavailable`` (and ``Retry-After``; a request that cannot start in time gets
  ``server busy``, core/admission.py);
* a client that left before its transaction committed: 499, which nobody reads (the
  transaction was rolled back);
* anything else: 500 ``internal error`` (the traceback goes to the log only).
"""

import logging
from collections.abc import Callable, Coroutine, Iterator, Sequence
from typing import Any

import psycopg2
from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.routing import BaseRoute, Match

from core.admission import RETRY_AFTER_SECONDS
from core.db import CONNECTION_ERRORS, ClientLeft, PoolTimeout

logger = logging.getLogger("app")


async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    """422 listing the problems; the input is not echoed back (it may be huge or not
    representable in JSON, like a lone surrogate)."""
    problems = [
        {"type": error["type"], "loc": list(error["loc"]), "msg": error["msg"]}
        for error in exc.errors()
    ]
    return JSONResponse({"detail": problems}, status_code=422)


def all_routes(routes: Sequence[BaseRoute]) -> Iterator[BaseRoute]:
    """Every route, including those of included routers."""
    for route in routes:
        included = getattr(route, "original_router", None)
        yield from all_routes(included.routes) if included is not None else (route,)


async def method_not_allowed(request: Request, exc: HTTPException) -> JSONResponse:
    """405 whose Allow header lists every method of the path (Starlette's lists only
    those of the first route that matches the path)."""
    methods = {
        method
        for route in all_routes(request.app.router.routes)
        if route.matches(request.scope)[0] != Match.NONE
        for method in getattr(route, "methods", None) or ()
    }
    return JSONResponse(
        {"detail": exc.detail},
        status_code=405,
        headers={"Allow": ", ".join(sorted(methods))},
    )


async def data_error(request: Request, exc: psycopg2.DataError) -> JSONResponse:
    """Data the database refused although it passed validation: the client's fault."""
    reason = exc.diag.message_primary or "invalid data"
    problem = {"type": "database_data_error", "loc": ["body"], "msg": reason}
    return JSONResponse({"detail": [problem]}, status_code=422)


async def database_unavailable(request: Request, exc: Exception) -> JSONResponse:
    first_line = (str(exc).strip().splitlines() or [""])[0]
    logger.warning("database unavailable: %s: %s", type(exc).__name__, first_line)
    return JSONResponse(
        {"detail": "database unavailable"},
        status_code=503,
        headers={"Retry-After": RETRY_AFTER_SECONDS},
    )


async def client_left(request: Request, exc: ClientLeft) -> JSONResponse:
    logger.info("rolled back %s %s: the client left", request.method, request.url.path)
    return JSONResponse({"detail": "client closed request"}, status_code=499)


async def internal_error(request: Request, exc: Exception) -> JSONResponse:
    """Last resort. Starlette re-raises the exception afterwards, and uvicorn logs its
    traceback; the client only gets this."""
    return JSONResponse({"detail": "internal error"}, status_code=500)


Handler = Callable[[Request, Any], Coroutine[Any, Any, Response]]

EXCEPTION_HANDLERS: dict[int | type[Exception], Handler] = {
    RequestValidationError: validation_error,
    405: method_not_allowed,
    psycopg2.DataError: data_error,
    PoolTimeout: database_unavailable,
    ClientLeft: client_left,
    **dict.fromkeys(CONNECTION_ERRORS, database_unavailable),
    Exception: internal_error,
}
