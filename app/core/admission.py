"""Bounded waiting: at most DATABASE_POOL_SIZE requests run at once in a process (each may
hold a connection), REQUEST_QUEUE_SIZE more wait, and none waits longer than
DATABASE_POOL_TIMEOUT seconds from its arrival. A request that cannot start in time, or
finds the queue full, gets a JSON 503 with ``Retry-After`` at once: under overload the
answers stay fast, and memory stays bounded.

A request whose client has left (nginx closes the connection when its client does) is not
started if it is still waiting, and if it is running its transaction is rolled back
instead of committed (core/db.py asks ``client_left()``): a write the client gave up on
never lands later, after a newer one. The routes that never touch the database are exempt,
the health probes among them (they have bounds of their own, routes/health.py).
"""

import contextvars
import threading
import time

import anyio
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Set while a request runs: whether its client has left. (Context variables reach the
# worker threads that run the routes: anyio copies them.)
_CLIENT_LEFT: contextvars.ContextVar[threading.Event | None] = contextvars.ContextVar(
    "client_left", default=None
)
# What never touches the database: the probes (with bounds of their own, routes/health.py),
# the limits and the documentation.
EXEMPT_PREFIXES = ("/health/", "/limits", "/docs", "/redoc", "/openapi.json")
RETRY_AFTER_SECONDS = "1"


def client_left() -> bool:
    """True if the client of the request being served has closed its connection."""
    event = _CLIENT_LEFT.get()
    return event is not None and event.is_set()


def server_busy() -> JSONResponse:
    return JSONResponse(
        {"detail": "server busy"}, status_code=503, headers={"Retry-After": RETRY_AFTER_SECONDS}
    )


class AdmissionControl:
    def __init__(self, app: ASGIApp, capacity: int, queue_size: int, timeout: float) -> None:
        self.app = app
        self.capacity = capacity
        self.queue_size = queue_size
        self.timeout = timeout
        self.waiting = 0
        self._slots: anyio.Semaphore | None = None  # made in the event loop, on first use

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(EXEMPT_PREFIXES):
            await self.app(scope, receive, send)
            return
        arrived = time.monotonic()
        body = await read_body(receive)
        if body is None:
            return  # the client left while sending its request
        left = threading.Event()
        left_async = anyio.Event()
        answered = False

        async def watch_client() -> None:
            # After the body, the server's next message is the disconnect (also sent once
            # the response is complete).
            while (await receive())["type"] != "http.disconnect":
                pass
            if not answered:
                left.set()
            left_async.set()

        async def replay() -> Message:
            if body:
                return body.pop(0)
            await left_async.wait()
            return {"type": "http.disconnect"}

        async def send_and_note(message: Message) -> None:
            nonlocal answered
            if message["type"] == "http.response.body" and not message.get("more_body"):
                answered = True
            await send(message)

        async with anyio.create_task_group() as watching:
            watching.start_soon(watch_client)
            try:
                if not await self._admit(arrived, left_async):
                    if not left.is_set():
                        await server_busy()(scope, replay, send_and_note)
                    return
                token = _CLIENT_LEFT.set(left)
                try:
                    await self.app(scope, replay, send_and_note)
                finally:
                    _CLIENT_LEFT.reset(token)
                    self.slots.release()
            finally:
                watching.cancel_scope.cancel()

    @property
    def slots(self) -> anyio.Semaphore:
        if self._slots is None:
            self._slots = anyio.Semaphore(self.capacity)
        return self._slots

    async def _admit(self, arrived: float, left: anyio.Event) -> bool:
        """Take a slot within the time left of the timeout; False when there was none in
        time, the queue was full, or the client left while waiting."""
        if self.slots.value == 0 and self.waiting >= self.queue_size:
            return False
        self.waiting += 1
        admitted = False
        try:
            async with anyio.create_task_group() as waiting:

                async def give_up_if_the_client_leaves() -> None:
                    await left.wait()
                    waiting.cancel_scope.cancel()

                waiting.start_soon(give_up_if_the_client_leaves)
                with anyio.move_on_after(self.timeout - (time.monotonic() - arrived)):
                    await self.slots.acquire()
                    admitted = True
                waiting.cancel_scope.cancel()
        finally:
            self.waiting -= 1
        if admitted and left.is_set():
            self.slots.release()
            return False
        return admitted


async def read_body(receive: Receive) -> list[Message] | None:
    """The request's body messages, or None if the client left before sending it all."""
    messages = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        messages.append(message)
        if not message.get("more_body"):
            return messages
