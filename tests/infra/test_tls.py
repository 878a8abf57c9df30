"""TLS on the HTTPS port, seen from the controller: Mozilla's intermediate profile (TLS 1.2
and 1.3, ECDHE key exchange with AEAD ciphers only), HTTP/2, a session cache, and the
self-signed certificate the role makes when given none (ECDSA, its key root-only).
(Its renewal: test_tls_renewal.py.)"""

import socket
import ssl
from typing import Any

import httpx
import pytest
from hostcheck import Setting
from rawhttp import http1
from tlsprobe import (
    client_context,
    file_certificate_sha256,
    self_signed_files,
    served_certificate_sha256,
    tls_connection,
)


@pytest.fixture(autouse=True)
def only_on_web_hosts(groups: set[str]) -> None:
    if "web" not in groups:
        pytest.skip("not a web host")


def handshake(address: str, port: int, version: ssl.TLSVersion) -> str:
    """The TLS version negotiated when the client offers only `version`."""
    with tls_connection(address, port, client_context(version)) as tls:
        return str(tls.version())


def test_tls_1_1_is_refused(address: str, setting: Setting) -> None:
    with pytest.raises(ssl.SSLError):
        handshake(address, int(setting("nginx_https_port")), ssl.TLSVersion.TLSv1_1)


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
def test_tls_1_2_and_1_3_are_accepted(address: str, setting: Setting, version: Any) -> None:
    negotiated = handshake(address, int(setting("nginx_https_port")), version)
    assert negotiated == {"TLSv1_2": "TLSv1.2", "TLSv1_3": "TLSv1.3"}[version.name]


def tls_1_2_ciphers() -> list[str]:
    """Every cipher suite this controller's OpenSSL can offer in TLS 1.2 (those of TLS 1.0
    and SSLv3 included: "protocol" is where a suite first appeared)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.set_ciphers("ALL:COMPLEMENTOFALL:@SECLEVEL=0")
    return [c["name"] for c in context.get_ciphers() if c["protocol"] != "TLSv1.3"]


def test_tls_1_2_takes_only_ecdhe_with_aead_ciphers(address: str, setting: Setting) -> None:
    """Each cipher suite offered alone: only ECDHE key exchange with an AEAD cipher (GCM,
    CCM, ChaCha20-Poly1305) gets a handshake."""
    port, accepted = int(setting("nginx_https_port")), set()
    for cipher in tls_1_2_ciphers():
        try:
            context = client_context(ssl.TLSVersion.TLSv1_2, cipher)
            with tls_connection(address, port, context) as tls:
                accepted.add(str(tls.cipher()[0]))
        except (ssl.SSLError, ConnectionResetError):
            pass
    assert accepted, "no TLS 1.2 cipher suite was accepted"
    aead = ("GCM", "CCM", "CHACHA20-POLY1305")
    weak = {c for c in accepted if not (c.startswith("ECDHE-") and any(a in c for a in aead))}
    assert weak == set(), f"accepted beyond ECDHE with AEAD: {sorted(weak)}"


def test_a_tls_session_is_resumed_from_the_cache(address: str, setting: Setting) -> None:
    """Session tickets are off: a resumed session comes from nginx's session cache."""
    port, context = int(setting("nginx_https_port")), client_context(ssl.TLSVersion.TLSv1_2)
    with tls_connection(address, port, context) as first:
        session = first.session
        assert session is not None and not first.session_reused
        # An answer on this connection: nginx has finished its side of the handshake (and
        # cached the session) before it reads a request. Without it, a loaded host was seen
        # to take the second connection first.
        first.sendall(http1(b"GET /health/live HTTP/1.1").replace(b"{host}", address.encode()))
        assert first.recv(4096).startswith(b"HTTP/1.1 200 ")
    with tls_connection(address, port, context, session) as second:
        assert second.session_reused, "the session was not resumed"


def test_http2_is_offered(address: str, setting: Setting) -> None:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_alpn_protocols(["h2", "http/1.1"])
    port = int(setting("nginx_https_port"))
    with (
        socket.create_connection((address, port), timeout=5) as sock,
        context.wrap_socket(sock) as tls,
    ):
        assert tls.selected_alpn_protocol() == "h2"


def test_certificate_verifies_for_the_host_address(https: httpx.Client) -> None:
    # The client verifies the chain and the name: a certificate without the
    # host's address in its names fails here.
    assert https.get("/health/live").status_code == 200


def test_the_self_signed_certificate_is_ecdsa_with_a_root_only_key(
    host: Any, address: str, setting: Setting
) -> None:
    certificate, key = self_signed_files(host, setting)
    text = host.check_output("openssl x509 -in %s -noout -text", certificate)
    assert "Public Key Algorithm: id-ecPublicKey" in text, text
    key_file = host.file(key)
    assert (key_file.user, key_file.group, key_file.mode) == ("root", "root", 0o600)
    # ... and it is the one nginx serves.
    port = int(setting("nginx_https_port"))
    assert served_certificate_sha256(address, port) == file_certificate_sha256(host, certificate)
