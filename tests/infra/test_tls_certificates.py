"""The certificate, through real runs of the role's TLS tasks (--tags nginx-tls): the
self-signed one is made again when it expires within nginx_tls_selfsigned_renew_days (30) or
is missing, a certificate given as PEM text is served, and nginx serves each new one. (That a
valid one is kept: the second deploy of `make test` changes nothing.) In a module of its own:
the other modules' clients trust the certificate they found when they started."""

import hashlib
import json
import ssl
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest
from deploys import playbook
from hostcheck import Setting
from tlsprobe import (
    file_certificate_sha256,
    self_signed_files,
    served_certificate,
    served_certificate_sha256,
)

# Replaces the host's certificate: only on hosts made for testing (see `make verify`).
pytestmark = pytest.mark.destructive


@pytest.fixture
def files(host: Any, groups: set[str], setting: Setting) -> tuple[str, str]:
    """The self-signed certificate and key of a web host (other hosts skip)."""
    if "web" not in groups:
        pytest.skip("not a web host")
    return self_signed_files(host, setting)


def test_a_certificate_that_expires_soon_is_made_again(
    request: Any, host: Any, files: tuple[str, str], address: str, page_url: str, setting: Setting
) -> None:
    (certificate, key), port = files, int(setting("nginx_https_port"))
    request_file = certificate.removesuffix(".crt") + ".csr"
    days = int(setting("nginx_tls_selfsigned_renew_days")) - 20
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


def test_a_given_certificate_is_served_and_a_missing_one_is_made(
    request: Any, host: Any, files: tuple[str, str], address: str, setting: Setting, tmp_path: Path
) -> None:
    (certificate, key), port = files, int(setting("nginx_https_port"))
    inventory = str(request.config.getoption("ansible_inventory"))
    # A certificate of the user's own (made here, on the controller), given as PEM text.
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-subj", "/CN=given", "-addext", f"subjectAltName=IP:{address}", "-days", "30",
         "-keyout", str(tmp_path / "key.pem"), "-out", str(tmp_path / "cert.pem")],
        check=True, capture_output=True,
    )  # fmt: skip
    given = tmp_path / "given.json"
    given.write_text(json.dumps({
        "nginx_tls_certificate_pem": (tmp_path / "cert.pem").read_text(),
        "nginx_tls_key_pem": (tmp_path / "key.pem").read_text(),
    }))  # fmt: skip
    run = playbook(inventory, "--tags", "nginx-tls", "-e", f"@{given}")
    assert run.returncode == 0, run.stdout[-3000:]
    given_der = ssl.PEM_cert_to_DER_cert((tmp_path / "cert.pem").read_text())
    assert served_certificate(address, port) == given_der, (
        "nginx does not serve the given certificate"
    )
    key_file = host.file(key)
    assert (key_file.user, key_file.group, key_file.mode) == ("root", "root", 0o600)

    # Without it (and without the self-signed one), the role makes a self-signed one again.
    host.check_output("rm -f %s %s", certificate, key)
    run = playbook(inventory, "--tags", "nginx-tls")
    assert run.returncode == 0, run.stdout[-3000:]
    made = served_certificate(address, port)
    assert made != given_der
    assert hashlib.sha256(made).hexdigest() == file_certificate_sha256(host, certificate)
    text = host.check_output("openssl x509 -in %s -noout -text", certificate)
    assert "Public Key Algorithm: id-ecPublicKey" in text
