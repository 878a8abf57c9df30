"""HTTP/1.x on a bare TLS socket: for what an HTTP client refuses to write or would normalise
(see hostile_corpus.RAW), and for the certificate a TLS context verified."""

import socket
import ssl

import httpx


def http1(
    line: bytes = b"GET /messages/1 HTTP/1.1",
    *headers: bytes,
    body: bytes = b"",
    host: bytes = b"Host: {host}",
) -> bytes:
    """A request as bytes; `host` comes first ("{host}": the address send_raw connects to)."""
    fields = [*([host] if host else []), *headers, b"Connection: close"]
    return line + b"\r\n" + b"".join(field + b"\r\n" for field in fields) + b"\r\n" + body


def send_raw(
    address: str,
    port: int,
    tls_context: ssl.SSLContext,
    data: bytes,
    key: str = "",
    server_name: str | None = None,
) -> httpx.Response:
    """Write `data` as is ("{host}" in it becomes `address`, "{key}" the API key) on a new TLS
    connection (whose SNI is `server_name`, by default none: `address`) and read one HTTP/1.x
    answer."""
    data = data.replace(b"{host}", address.encode()).replace(b"{key}", key.encode())
    with (
        socket.create_connection((address, port), timeout=10) as sock,
        tls_context.wrap_socket(sock, server_hostname=server_name or address) as tls,
    ):
        tls.sendall(data)
        received = b""
        while b"\r\n\r\n" not in received:
            chunk = tls.recv(65536)
            if not chunk:
                raise AssertionError(f"connection closed after {received[:200]!r}")
            received += chunk
        head, _, body = received.partition(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        headers = [tuple(part.strip() for part in line.split(":", 1)) for line in header_lines]
        declared = dict((name.lower(), value) for name, value in headers).get("content-length")
        length = int(declared) if declared else None  # else up to the close
        while length is None or len(body) < length:
            chunk = tls.recv(65536)
            if not chunk:
                break
            body += chunk
    return httpx.Response(int(status_line.split()[1]), headers=headers, content=body[:length])


def trusted_certificates(address: str, port: int, tls_context: ssl.SSLContext) -> str:
    """What `tls_context` trusts, as PEM: its CAs, and the host's certificate once it verified
    (a self-signed one is no CA, so get_ca_certs leaves it out)."""
    with (
        socket.create_connection((address, port), timeout=10) as sock,
        tls_context.wrap_socket(sock, server_hostname=address) as tls,
    ):
        verified = tls.getpeercert(binary_form=True)
    certificates = [*tls_context.get_ca_certs(binary_form=True), verified]
    return "".join(ssl.DER_cert_to_PEM_cert(der) for der in certificates if der)
