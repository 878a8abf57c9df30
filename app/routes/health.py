"""Liveness and readiness probes, answered as ``application/health+json``."""

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor

from fastapi import APIRouter
from fastapi.responses import JSONResponse

import db
from models import Health, HealthCheck

router = APIRouter(prefix="/health", tags=["health"])

STARTED = time.monotonic()
# The readiness probe runs here, one at a time, so a hung database never holds more
# than one connection or thread, and the endpoint can stop waiting after the timeout.
_probe_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="readiness")


class Limits:
    """Set from the settings at start-up (see ``main.create_app``)."""

    readiness_timeout = 1.0


class HealthResponse(JSONResponse):
    media_type = "application/health+json"


def health_response(health: Health) -> HealthResponse:
    return HealthResponse(
        health.model_dump(exclude_none=True),
        status_code=200 if health.status == "pass" else 503,
        headers={"Cache-Control": "no-store"},
    )


HEALTH_DOC = {"model": Health, "content": {"application/health+json": {}}}


@router.get("/live", response_class=HealthResponse, responses={200: HEALTH_DOC})
async def live() -> HealthResponse:
    """The process answers. Never touches the database."""
    uptime = HealthCheck(
        status="pass", observedValue=round(time.monotonic() - STARTED, 3), observedUnit="s"
    )
    return health_response(Health(status="pass", checks={"uptime": [uptime]}))


@router.get(
    "/ready",
    response_class=HealthResponse,
    responses={200: HEALTH_DOC, 503: {**HEALTH_DOC, "description": "Not ready"}},
)
async def ready() -> HealthResponse:
    """``SELECT 1`` answers within READINESS_TIMEOUT seconds."""
    timeout = Limits.readiness_timeout
    probe = asyncio.wrap_future(_probe_executor.submit(db.ping))
    try:
        # shield: on timeout stop waiting, but let the probe finish in its thread.
        millis = await asyncio.wait_for(asyncio.shield(probe), timeout)
        check = HealthCheck(status="pass", observedValue=round(millis, 3), observedUnit="ms")
    except TimeoutError:
        check = HealthCheck(status="fail", output=f"no answer within {timeout:g} s")
    except Exception as exc:
        check = HealthCheck(status="fail", output=short_reason(exc))
    return health_response(Health(status=check.status, checks={"postgresql:connection": [check]}))


def short_reason(exc: BaseException) -> str:
    """The error's type and the first line of its message (libpq never includes passwords)."""
    lines = str(exc).strip().splitlines()
    reason = f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__
    return reason[:200]
