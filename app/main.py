"""The messages service: ``cd app && uvicorn main:app``.

The settings are read once from environment variables (core/config.py) and kept on
``app.state.settings``. At start-up (the lifespan) the pending migrations are applied
(unless MIGRATE_ON_STARTUP=false) and the connection pool is created on ``app.state.pool``;
at shutdown the pool is closed. Routes reach both through api/deps.py.
"""

import logging
import sys
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Any

from anyio import to_thread
from fastapi import Depends, FastAPI

import migrate
from api.deps import check_key_if_given, require_key
from api.routes import docs, health, limits, messages
from core.admission import AdmissionControl
from core.config import Settings, load_settings
from core.db import Pool
from core.security import KeyRing
from errors import EXCEPTION_HANDLERS
from request_log import RequestLogMiddleware

logger = logging.getLogger("app")


def configure_logging(level: str) -> None:
    """Our log lines go to stdout; uvicorn's access log is replaced by RequestLogMiddleware."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logger.handlers = [handler]
    logger.setLevel(level.upper())
    logger.propagate = False
    logging.getLogger("uvicorn.access").disabled = True


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Create what the routes use (see api/deps.py) before the first request; close it after
    the last."""
    settings: Settings = app.state.settings
    if settings.migrate_on_startup:
        applied = await to_thread.run_sync(migrate.run, settings)
        logger.info("migrations applied: %s", ", ".join(applied) or "none pending")
    # Each request holding a connection occupies a worker thread, and admission control
    # lets at most one per connection run (core/admission.py): room for all of them, and
    # for as many more threads for the rest (the key checks, the docs).
    to_thread.current_default_thread_limiter().total_tokens = 2 * settings.database_pool_size
    # Connections are opened lazily, on first use.
    pool = Pool(settings)
    readiness_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="readiness")
    app.state.pool = pool
    app.state.readiness_thread = readiness_thread
    app.state.started = time.monotonic()
    try:
        yield
    finally:
        readiness_thread.shutdown(wait=False)
        pool.close()


class MessagesAPI(FastAPI):
    """FastAPI, with this app's MESSAGE_MAX_LENGTH in the OpenAPI schema as the text's
    ``maxLength``. The routes check it against the app's settings (api/routes/messages.py):
    the model, shared by every app in the process, does not know it."""

    def openapi(self) -> dict[str, Any]:
        schema = super().openapi()  # generated once, again only when routes are added
        settings: Settings = self.state.settings
        text = schema["components"]["schemas"]["MessageIn"]["properties"]["message"]
        text["maxLength"] = settings.message_max_length
        return schema


def create_app(settings: Settings) -> FastAPI:
    app = MessagesAPI(
        title="Messages",
        version="1.0.0",
        lifespan=lifespan,
        exception_handlers=EXCEPTION_HANDLERS,
        # Served from this host's own assets instead (routes/docs.py).
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.keys = KeyRing(settings)
    read_check = check_key_if_given if settings.public_reads else require_key
    app.include_router(messages.writes, dependencies=[Depends(require_key)])
    app.include_router(messages.reads, dependencies=[Depends(read_check)])
    app.include_router(health.router)
    app.include_router(limits.router)
    app.include_router(docs.router)
    app.mount(docs.ASSETS_URL, docs.assets)
    # At most one request per pooled connection runs; the others wait, bounded.
    app.add_middleware(
        AdmissionControl,
        capacity=settings.database_pool_size,
        queue_size=settings.request_queue_size,
        timeout=settings.database_pool_timeout,
    )
    if settings.access_log:
        app.add_middleware(RequestLogMiddleware)
    return app


settings = load_settings()
configure_logging(settings.log_level)
app = create_app(settings)
