"""A load generator that runs ON the test host (python3, standard library only): GETs of one
path over HTTPS to nginx on 127.0.0.1, from many loopback source addresses (so that each is a
client of its own for nginx's per-client limits), with the site's canonical name as Host.

    python3 overload_client.py closed NAME PORT PATH SECONDS CONNECTIONS
        as many requests as CONNECTIONS connections can make back to back: the capacity
    python3 overload_client.py open NAME PORT PATH SECONDS RATE
        RATE requests a second on a fixed schedule, whatever the answers take (open loop)

Prints one JSON object: the count of each outcome (a status, or an error's name), the
requests sent, and the seconds each 503 took. Bounded: it stops sending after SECONDS and
gives every request at most TIMEOUT seconds. test_overload.py ships and runs it.
"""

import asyncio
import json
import ssl
import sys
import time
from collections import Counter

TIMEOUT = 30.0
PER_CLIENT_RATE = 5.0  # requests a second from one source address (nginx allows 20)
MAX_CONNECTIONS = 30  # per source address (nginx allows 50)


class Client:
    """One source address with its kept-alive connections."""

    def __init__(self, source: str, target: "Target", results: "Results") -> None:
        self.source, self.results, self.port = source, results, target.port
        name, path = target.name, target.path
        self.request = f"GET {path} HTTP/1.1\r\nHost: {name}\r\n\r\n".encode()
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        self.open = 0

    async def get(self) -> None:
        started = time.monotonic()
        try:
            outcome = await asyncio.wait_for(self._get(), TIMEOUT)
        except Exception as error:  # every failure is an outcome to count
            outcome = type(error).__name__
        self.results.record(outcome, time.monotonic() - started)

    async def _get(self) -> str:
        if self.idle:
            reader, writer = self.idle.pop()
        elif self.open < MAX_CONNECTIONS:
            self.open += 1
            try:
                reader, writer = await asyncio.open_connection(
                    "127.0.0.1", self.port, ssl=CONTEXT, local_addr=(self.source, 0)
                )
            except BaseException:
                self.open -= 1
                raise
        else:
            return "client-saturated"
        try:
            writer.write(self.request)
            head = await reader.readuntil(b"\r\n\r\n")
            status = head.split(b" ", 2)[1].decode()
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            await reader.readexactly(length)
        except BaseException:
            self.open -= 1
            writer.close()
            raise
        if b"connection: close" in head.lower():
            self.open -= 1
            writer.close()
        else:
            self.idle.append((reader, writer))
        return status


class Target:
    def __init__(self, name: str, port: str, path: str) -> None:
        self.name, self.port, self.path = name, int(port), path


class Results:
    def __init__(self) -> None:
        self.outcomes: Counter[str] = Counter()
        self.busy_seconds: list[float] = []

    def record(self, outcome: str, seconds: float) -> None:
        self.outcomes[outcome] += 1
        if outcome == "503":
            self.busy_seconds.append(round(seconds, 3))


def clients_for(count: int, target: Target, results: Results) -> list[Client]:
    """Clients from 127.0.1.1, 127.0.1.2, ... (the whole of 127/8 is the host's loopback)."""
    return [Client(f"127.0.{1 + n // 250}.{1 + n % 250}", target, results) for n in range(count)]


async def closed(target: Target, seconds: float, connections: float) -> Results:
    results = Results()
    clients = clients_for(max(1, int(connections) // 4), target, results)
    deadline = time.monotonic() + seconds

    async def loop(client: Client) -> None:
        while time.monotonic() < deadline:
            await client.get()

    await asyncio.gather(*(loop(clients[n % len(clients)]) for n in range(int(connections))))
    return results


async def open_loop(target: Target, seconds: float, rate: float) -> Results:
    results = Results()
    clients = clients_for(max(1, round(rate / PER_CLIENT_RATE)), target, results)
    start, sent, pending = time.monotonic(), 0, []
    while (due := start + sent / rate) < start + seconds:
        await asyncio.sleep(max(0.0, due - time.monotonic()))
        pending.append(asyncio.ensure_future(clients[sent % len(clients)].get()))
        sent += 1
    await asyncio.gather(*pending)
    return results


CONTEXT = ssl.create_default_context()
CONTEXT.check_hostname = False
CONTEXT.verify_mode = ssl.CERT_NONE


def main() -> None:
    mode, name, port, path, seconds, amount = sys.argv[1:7]
    started = time.monotonic()
    run = closed if mode == "closed" else open_loop
    results = asyncio.run(run(Target(name, port, path), float(seconds), float(amount)))
    print(
        json.dumps(
            {
                "outcomes": dict(results.outcomes),
                "sent": sum(results.outcomes.values()),
                "seconds": round(time.monotonic() - started, 2),
                "busy_seconds": sorted(results.busy_seconds),
            }
        )
    )


if __name__ == "__main__":
    main()
