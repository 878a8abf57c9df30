"""TLS from the controller's side: clients that offer only what a test asks for, and the
certificate a host serves compared with the one in its files."""

import hashlib
import socket
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from hostcheck import Setting


def client_context(
    version: ssl.TLSVersion = ssl.TLSVersion.TLSv1_3, ciphers: str = "DEFAULT"
) -> ssl.SSLContext:
    """A client that offers only `version` and `ciphers`, old ones included, so that a
    refusal is the server's."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_ciphers(f"{ciphers}:@SECLEVEL=0")
    context.minimum_version = context.maximum_version = version
    return context


@contextmanager
def tls_connection(
    address: str, port: int, context: ssl.SSLContext, session: ssl.SSLSession | None = None
) -> Iterator[ssl.SSLSocket]:
    with (
        socket.create_connection((address, port), timeout=5) as sock,
        context.wrap_socket(sock, session=session) as tls,
    ):
        yield tls


def self_signed_files(host: Any, setting: Setting) -> tuple[str, str]:
    """The certificate and key the role makes when the inventory gives none."""
    variables = host.ansible.get_variables()
    if variables.get("nginx_tls_certificate_path") or variables.get("nginx_tls_certificate_pem"):
        pytest.skip("a certificate of your own, not the self-signed one")
    base = f"/etc/nginx/tls/{setting('nginx_site_name')}"
    return f"{base}.crt", f"{base}.key"


def served_certificate(address: str, port: int) -> bytes:
    """The certificate the host serves, DER-encoded."""
    with tls_connection(address, port, client_context()) as tls:
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return der


def served_certificate_sha256(address: str, port: int) -> str:
    return hashlib.sha256(served_certificate(address, port)).hexdigest()


def file_certificate_sha256(host: Any, path: str) -> str:
    der_hex = host.check_output(
        "openssl x509 -in %s -outform der | od -An -v -tx1 | tr -d ' \\n'", path
    )
    return hashlib.sha256(bytes.fromhex(der_hex)).hexdigest()
