"""A bounded background load that counts what the clients were told, for tests that
break things (or release, or roll back) while it runs. Traffic goes only to the test host.

With `write` (the default) each client also POSTs new messages and PUTs its own message in
turn; `Load.lost_writes` then lists every write that was answered 2xx but is not in the
database."""

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
from hostcheck import Setting

# Below nginx's per-client rate limit (20 r/s by default): every answer counts.
LOAD_THREADS = 3
PAUSE = 0.4  # two requests a pause per thread: 15 r/s in all

# A server may close a kept-alive connection at any time, and a request sent as it does so gets
# no answer (RFC 9112 section 9.3.1): a graceful nginx reload closes its idle connections. An
# HTTP client sends such a request again on a new connection only when it is idempotent.
CLOSED_UNANSWERED = (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError)
IDEMPOTENT = {"GET", "PUT"}
POST_UNANSWERED = "POST unanswered"


@dataclass
class Load:
    """What the clients of a background load saw, as (seconds since start, outcome)."""

    outcomes: list[tuple[float, str]] = field(default_factory=list)
    # The same, with the method: (seconds since start, method, outcome).
    answers: list[tuple[float, str, str]] = field(default_factory=list)
    created_ids: list[int] = field(default_factory=list)
    # Per message a client PUTs: every text it sent, in order, and whether it got a 2xx.
    puts: dict[int, list[tuple[str, bool]]] = field(default_factory=dict)
    # Requests sent again after their connection closed unanswered; POSTs that were not.
    resent: int = 0
    unanswered_posts: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def send(self, client: httpx.Client, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """One request, sent once more on a new connection when it is idempotent and its
        connection closed before any answer."""
        try:
            return client.request(method, url, **kwargs)
        except CLOSED_UNANSWERED:
            if method not in IDEMPOTENT:
                raise
            with self.lock:
                self.resent += 1
            return client.request(method, url, **kwargs)

    def record(
        self, started: float, outcome: str, created: int | None = None, method: str = ""
    ) -> None:
        with self.lock:
            at = time.monotonic() - started
            self.outcomes.append((at, outcome))
            self.answers.append((at, method, outcome))
            if created is not None:
                self.created_ids.append(created)

    def between(self, start: float, end: float) -> list[str]:
        return [outcome for at, outcome in self.outcomes if start <= at < end]

    def counts(self) -> dict[str, int]:
        """How many answers of each kind (status code or exception name)."""
        every = [outcome for _, outcome in self.outcomes]
        return {outcome: every.count(outcome) for outcome in sorted(set(every))}

    def lost_writes(self, host: Any) -> list[str]:
        """The acknowledged writes the database does not hold: a created message that is
        missing, or a message whose text is older than its last PUT answered with 200."""
        stored = stored_messages(host, [*self.created_ids, *self.puts])
        lost = [f"POST answered 201, no row {id_}" for id_ in self.created_ids if id_ not in stored]
        for id_, sent in self.puts.items():
            acknowledged = [index for index, (_, ok) in enumerate(sent) if ok]
            if not acknowledged:
                continue
            # The last acknowledged text, or a later one whose answer was lost.
            allowed = {text for text, _ in sent[acknowledged[-1] :]}
            if stored.get(id_) not in allowed:
                last = sent[acknowledged[-1]][0]
                lost.append(f"PUT {last!r} answered 200, row {id_} holds {stored.get(id_)!r}")
        return lost

    def unanswered_posts_stored(self, host: Any) -> list[str]:
        """The POSTs that got no answer yet reached the database (an interrupted write, not a
        request the server closed the connection under before reading it)."""
        if not self.unanswered_posts:
            return []
        texts = ",".join(json.dumps(text) for text in self.unanswered_posts)
        return list(
            psql_json(
                host,
                "SELECT coalesce(json_agg(message), '[]') FROM messages "  # noqa: S608
                f"WHERE message IN (SELECT json_array_elements_text('[{texts}]'))",  # json-quoted
            )
        )


@contextmanager
def background_load(
    page_url: str, tls_context: Any, key: str, write: bool = True, seconds: float = 120
) -> Iterator[tuple[Load, float]]:
    """Each thread: a write when `write` (POST a new message and PUT its own one in turn) and
    a read of one message, until the block ends (bounded by `seconds`). Every request carries
    the API key `key`."""
    load, stop, started = Load(), threading.Event(), time.monotonic()
    auth = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=page_url, verify=tls_context, timeout=10, headers=auth) as client:
        readable = client.post("/messages", json={"message": "read under load"})
        readable.raise_for_status()
        owned = []
        for number in range(LOAD_THREADS if write else 0):
            response = client.post("/messages", json={"message": f"put {number} #0"})
            response.raise_for_status()
            owned.append(response.headers["location"])
            load.puts[int(response.json()["id"])] = [(f"put {number} #0", True)]

    def write_once(client: httpx.Client, number: int, round_: int) -> None:
        if round_ % 2 == 0:
            text = f"load {number} #{round_} {started}"
            try:
                response = load.send(client, "POST", "/messages", json={"message": text})
            except CLOSED_UNANSWERED:
                with load.lock:
                    load.unanswered_posts.append(text)
                load.record(started, POST_UNANSWERED, method="POST")
                return
            created = response.json()["id"] if response.status_code == 201 else None
            load.record(started, str(response.status_code), created, method="POST")
            return
        text = f"put {number} #{round_}"
        sent = load.puts[int(owned[number].rsplit("/", 1)[1])]
        with load.lock:
            sent.append((text, False))
        # Raises: sent, no answer.
        response = load.send(client, "PUT", owned[number], json={"message": text})
        with load.lock:
            sent[-1] = (text, response.status_code == 200)
        load.record(started, str(response.status_code), method="PUT")

    def client_loop(number: int) -> None:
        with httpx.Client(
            base_url=page_url, verify=tls_context, timeout=10, headers=auth
        ) as client:
            round_ = 0
            while not stop.is_set() and time.monotonic() - started < seconds:
                try:
                    if write:
                        write_once(client, number, round_)
                    response = load.send(client, "GET", readable.headers["location"])
                    load.record(started, str(response.status_code), method="GET")
                except httpx.HTTPError as error:
                    load.record(started, type(error).__name__, method="?")
                round_ += 1
                time.sleep(PAUSE)

    threads = [threading.Thread(target=client_loop, args=(n,)) for n in range(LOAD_THREADS)]
    for thread in threads:
        thread.start()
    try:
        yield load, started
    finally:
        stop.set()
        for thread in threads:
            thread.join()


def ready(https: httpx.Client) -> bool:
    try:
        return https.get("/health/ready").status_code == 200
    except httpx.HTTPError:
        return False


def instances_rss_kib(host: Any, name: str, ports: list[int]) -> int:
    pids = [
        host.check_output("systemctl show --property MainPID --value %s@%s", name, str(port))
        for port in ports
    ]
    return sum(int(rss) for rss in host.check_output("ps -o rss= -p %s", ",".join(pids)).split())


def psql_json(host: Any, query: str) -> Any:
    """The one JSON value a query returns, run as the postgres superuser in the app's
    database (read-only: the query cannot write)."""
    database = host.ansible.get_variables()["app_database_name"]
    out = host.check_output(
        "echo %s | runuser -u postgres -- psql -XAtq -v ON_ERROR_STOP=1 "
        "-c 'SET default_transaction_read_only = on' -f - -d %s",
        query,
        database,
    )
    return json.loads(out)


def stored_ids(host: Any, setting: Setting) -> set[int]:
    ids = psql_json(host, "SELECT coalesce(json_agg(id), '[]') FROM messages")
    return {int(id_) for id_ in ids}


def stored_messages(host: Any, ids: list[int]) -> dict[int, str]:
    """The text of each of these messages that the database holds."""
    wanted = ",".join(str(int(id_)) for id_ in ids)
    rows = psql_json(
        host,
        "SELECT coalesce(json_object_agg(id, message), '{}') FROM messages "  # noqa: S608
        f"WHERE id = ANY('{{{wanted}}}'::bigint[])",  # integers only
    )
    return {int(id_): text for id_, text in rows.items()}


def database_fingerprint(host: Any) -> dict[str, Any]:
    """What the app's database holds: the messages' row count, largest id and a checksum of
    every row, a checksum of the applied migrations, and where each sequence stands (which
    any insert moves, even one deleted again)."""
    fingerprint: dict[str, Any] = psql_json(
        host,
        "SELECT json_build_object("
        " 'messages', (SELECT json_build_object('count', count(*), 'max_id', max(id),"
        "  'md5', md5(coalesce(string_agg(m::text, E'\\n' ORDER BY id), ''))) FROM messages m),"
        " 'migrations', (SELECT md5(coalesce(string_agg(s::text, E'\\n' ORDER BY version), ''))"
        "  FROM schema_migrations s),"
        " 'sequences', (SELECT json_object_agg(sequencename, last_value) FROM pg_sequences))",
    )
    return fingerprint
