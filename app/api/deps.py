"""What a route gets from the app, as typed dependencies: ``pool: PoolDep``,
``settings: SettingsDep``, and the readiness probe's own two; and the API key checks
(``require_key``, ``check_key_if_given``), which main.py puts on the message routes.

Each is an attribute of ``app.state``: the settings set by ``create_app``, the rest by the
lifespan (both in main.py). So two apps in one process share none of them.
"""

import logging
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.security.utils import get_authorization_scheme_param

from core.config import Settings
from core.db import Pool
from core.security import KeyRing

logger = logging.getLogger("app.auth")


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
KeyRingDep = Annotated[KeyRing, Depends(from_app_state("keys"))]

# What the OpenAPI schema declares for the operations that need a key.
bearer = HTTPBearer(
    auto_error=False,
    scheme_name="APIKey",
    description="An API key the server knows: `Authorization: Bearer <key>`.",
)


def unauthorized(detail: str, error: str | None = None) -> HTTPException:
    challenge = 'Bearer realm="messages"' + (f', error="{error}"' if error else "")
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED, detail, headers={"WWW-Authenticate": challenge}
    )


def verify(request: Request, key: str | None, keys: KeyRing) -> None:
    """Refuse (401, and a log line with the client and the key's name when known, never
    the key) a missing, unknown or revoked key."""
    client = request.client.host if request.client else "-"
    where = f"{request.method} {request.url.path} from {client}"
    if not key:
        logger.warning("refused %s: no API key", where)
        raise unauthorized("an API key is required: Authorization: Bearer <key>")
    identity = keys.identify(key)
    if identity.state == "valid":
        return
    if identity.state == "revoked":
        logger.warning("refused %s: the revoked API key %r", where, identity.name)
    else:
        logger.warning("refused %s: an unknown API key", where)
    raise unauthorized("the API key is not valid", "invalid_token")


async def require_key(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    keys: KeyRingDep,
) -> None:
    """The request must carry a valid key."""
    verify(request, credentials.credentials if credentials else None, keys)


async def check_key_if_given(request: Request, keys: KeyRingDep) -> None:
    """Public reads: no key needed, but one that is given must be valid (a read with a key
    skips nginx's cache, which must not be had for any made-up key)."""
    authorization = request.headers.get("authorization")
    if authorization is not None:
        scheme, key = get_authorization_scheme_param(authorization)
        verify(request, key if scheme.lower() == "bearer" else None, keys)
