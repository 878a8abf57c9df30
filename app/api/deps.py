"""What a route gets from the app, as typed dependencies: ``pool: PoolDep``,
``settings: SettingsDep``, and the readiness probe's own two.

Each is an attribute of ``app.state``: the settings set by ``create_app``, the rest by the
lifespan (both in main.py). So two apps in one process share none of them.
"""

from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Annotated, Any

from fastapi import Depends, Request

from core.config import Settings
from core.db import Pool


def from_app_state(name: str) -> Callable[[Request], Awaitable[Any]]:
    """A dependency that gives ``app.state.<name>`` of the app serving the request.

    (``async`` only so that FastAPI calls it on the event loop, not in a worker thread.)
    """

    async def dependency(request: Request) -> Any:
        return getattr(request.app.state, name)

    return dependency


SettingsDep = Annotated[Settings, Depends(from_app_state("settings"))]
PoolDep = Annotated[Pool, Depends(from_app_state("pool"))]
# The one thread that the readiness probe runs in, and when the app started serving
# (time.monotonic()); see routes/health.py.
ReadinessThreadDep = Annotated[ThreadPoolExecutor, Depends(from_app_state("readiness_thread"))]
StartedDep = Annotated[float, Depends(from_app_state("started"))]
