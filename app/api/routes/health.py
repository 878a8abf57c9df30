"""Liveness and readiness probes, answered as ``application/health+json``.

The public (a request through nginx: it carries X-Forwarded-For) hears only pass or fail;
the checks, the release and a failure's reason go to callers on the host itself (the
deploy's gate, monitoring) and to those nginx marks as admins (``X-Edge-Admin: 1``, which
nginx sets for nginx_admin_allow and strips from everyone else's requests). A failed
readiness check is logged with its reason.
"""

import asyncio
import logging
import time

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

import crud
from api.deps import PoolDep, ReadinessThreadDep, SettingsDep, StartedDep
from core.db import Pool
from models import Health, HealthCheck

router = APIRouter(prefix="/health", tags=["health"])
logger = logging.getLogger("app.health")


class HealthResponse(JSONResponse):
    media_type = "application/health+json"


def shows_details(request: Request) -> bool:
    headers = request.headers
    return "x-forwarded-for" not in headers or headers.get("x-edge-admin") == "1"


def health_response(request: Request, health: Health) -> HealthResponse:
    shown = health if shows_details(request) else Health(status=health.status)
    return HealthResponse(
        shown.model_dump(exclude_none=True),
        status_code=200 if health.status == "pass" else 503,
        headers={"Cache-Control": "no-store"},
    )


HEALTH_DOC = {"model": Health, "content": {"application/health+json": {}}}


@router.get("/live", response_class=HealthResponse, responses={200: HEALTH_DOC})
async def live(request: Request, started: StartedDep, settings: SettingsDep) -> HealthResponse:
    """The process answers. Never touches the database."""
    uptime = HealthCheck(
        status="pass", observedValue=round(time.monotonic() - started, 3), observedUnit="s"
    )
    return health_response(
        request, Health(status="pass", releaseId=settings.release_id, checks={"uptime": [uptime]})
    )


@router.get(
    "/ready",
    response_class=HealthResponse,
    responses={200: HEALTH_DOC, 503: {**HEALTH_DOC, "description": "Not ready"}},
)
async def ready(
    request: Request, pool: PoolDep, settings: SettingsDep, readiness_thread: ReadinessThreadDep
) -> HealthResponse:
    """``SELECT 1`` answers within READINESS_TIMEOUT seconds."""
    # The probe runs in its own single thread, one at a time, so a hung database never holds
    # more than one connection or thread, and the endpoint can stop waiting after the timeout.
    timeout = settings.readiness_timeout
    probe = asyncio.wrap_future(readiness_thread.submit(timed_ping, pool))
    try:
        # shield: on timeout stop waiting, but let the probe finish in its thread.
        millis = await asyncio.wait_for(asyncio.shield(probe), timeout)
        check = HealthCheck(status="pass", observedValue=round(millis, 3), observedUnit="ms")
    except TimeoutError:
        check = HealthCheck(status="fail", output=f"no answer within {timeout:g} s")
    except Exception as exc:
        check = HealthCheck(status="fail", output=short_reason(exc))
    if check.status == "fail":
        logger.warning("not ready: %s", check.output)
    return health_response(
        request,
        Health(
            status=check.status,
            releaseId=settings.release_id,
            checks={"postgresql:connection": [check]},
        ),
    )


def timed_ping(pool: Pool) -> float:
    """How long ``SELECT 1`` took, in milliseconds."""
    start = time.perf_counter()
    crud.ping(pool)
    return (time.perf_counter() - start) * 1000


def short_reason(exc: BaseException) -> str:
    """The error's type and the first line of its message (libpq never includes passwords)."""
    lines = str(exc).strip().splitlines()
    reason = f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__
    return reason[:200]
