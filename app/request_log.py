"""One log line per request: client, method, path, status, duration.

A plain ASGI middleware (Starlette's BaseHTTPMiddleware is slower). The client address
is the one uvicorn puts in the scope, which it takes from X-Forwarded-For when run with
--proxy-headers behind a trusted proxy.
"""

import logging
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

logger = logging.getLogger("app.access")


class RequestLogMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500  # if the app raises before answering, the server answers 500

        async def send_and_note_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note_status)
        finally:
            client = scope.get("client")
            address = f"{client[0]}:{client[1]}" if client else "-"
            millis = (time.perf_counter() - start) * 1000
            logger.info(
                '%s "%s %s" %d %.1fms', address, scope["method"], scope["path"], status, millis
            )
