"""The messages service: ``cd app && uvicorn main:app``.

Configuration comes from environment variables (see config.py). At start-up the
pending migrations are applied (unless MIGRATE_ON_STARTUP=false) and the connection
pool is created; at shutdown the pool is closed.
"""

import logging
import sys
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager

import psycopg2
from anyio import to_thread
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.routing import BaseRoute, Match

import db
import migrate
import models
from config import Settings, load_settings
from request_log import RequestLogMiddleware
from routes import health, messages

logger = logging.getLogger("app")


def configure_logging(level: str) -> None:
    """Our log lines go to stdout; uvicorn's access log is replaced by RequestLogMiddleware."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logger.handlers = [handler]
    logger.setLevel(level.upper())
    logger.propagate = False
    logging.getLogger("uvicorn.access").disabled = True


def create_app(settings: Settings) -> FastAPI:
    models.Limits.message_max_length = settings.message_max_length
    health.Limits.readiness_timeout = settings.readiness_timeout

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if settings.migrate_on_startup:
            applied = await to_thread.run_sync(migrate.run, settings)
            logger.info("migrations applied: %s", ", ".join(applied) or "none pending")
        # Each request holding a connection occupies a worker thread. Twice as many
        # threads as connections lets as many more requests wait for a connection
        # (up to DATABASE_POOL_TIMEOUT) rather than queue unseen for a thread.
        to_thread.current_default_thread_limiter().total_tokens = 2 * settings.database_pool_size
        db.open_pool(settings)
        try:
            yield
        finally:
            db.close_pool()

    app = FastAPI(
        title="Messages",
        version="1.0.0",
        lifespan=lifespan,
        exception_handlers={
            RequestValidationError: validation_error,
            405: method_not_allowed,
            psycopg2.DataError: data_error,
            db.PoolTimeout: database_unavailable,
            psycopg2.OperationalError: database_unavailable,
            psycopg2.InterfaceError: database_unavailable,
            Exception: internal_error,
        },
    )
    app.include_router(messages.router)
    app.include_router(health.router)
    if settings.access_log:
        app.add_middleware(RequestLogMiddleware)
    return app


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
    return JSONResponse({"detail": "database unavailable"}, status_code=503)


async def internal_error(request: Request, exc: Exception) -> JSONResponse:
    """Last resort. Starlette re-raises the exception afterwards, and uvicorn logs its
    traceback; the client only gets this."""
    return JSONResponse({"detail": "internal error"}, status_code=500)


settings = load_settings()
configure_logging(settings.log_level)
app = create_app(settings)
