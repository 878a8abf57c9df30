"""The self-signed certificate is made again when it expires within
nginx_tls_selfsigned_renew_days (30), and nginx serves the new one. (That a valid one is
kept: the second deploy of `make test` changes nothing.) In a module of its own: the other
modules' clients trust the certificate they found when they started."""

import ssl
from typing import Any

import httpx
import pytest
from deploys import playbook
from hostcheck import Setting
from tlsprobe import file_certificate_sha256, self_signed_files, served_certificate_sha256

# Replaces the host's certificate: only on hosts made for testing (see `make verify`).
pytestmark = pytest.mark.destructive


def test_a_certificate_that_expires_soon_is_made_again(
    request: Any, host: Any, groups: set[str], address: str, page_url: str, setting: Setting
) -> None:
    if "web" not in groups:
        pytest.skip("not a web host")
    certificate, key = self_signed_files(host, setting)
    request_file = certificate.removesuffix(".crt") + ".csr"
    days = int(setting("nginx_tls_selfsigned_renew_days")) - 20
    port = int(setting("nginx_https_port"))
    # The same request (names) and key as the role's: only its end date differs.
    host.check_output(
        "openssl x509 -req -in %s -signkey %s -copy_extensions copy -days %s -out %s && "
        "systemctl reload nginx",
        request_file, key, str(days), certificate,
    )  # fmt: skip
    expiring = file_certificate_sha256(host, certificate)
    assert served_certificate_sha256(address, port) == expiring

    run = playbook(str(request.config.getoption("ansible_inventory")), "--tags", "nginx-tls")
    assert run.returncode == 0, run.stdout[-3000:]

    renewed = file_certificate_sha256(host, certificate)
    assert renewed != expiring, "the certificate was not made again"
    renew_seconds = str(int(setting("nginx_tls_selfsigned_renew_days")) * 86400)
    assert host.run("openssl x509 -in %s -noout -checkend %s", certificate, renew_seconds).rc == 0
    assert served_certificate_sha256(address, port) == renewed, "nginx serves the old one"
    # The new one carries the host's names: a client that trusts it verifies the address.
    context = ssl.create_default_context(cadata=host.file(certificate).content_string)
    with httpx.Client(base_url=page_url, verify=context, timeout=10) as client:
        assert client.get("/health/live").status_code == 200
