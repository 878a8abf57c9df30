"""Hostile input through nginx, made by schemathesis: every check, against the deployed OpenAPI
schema. nginx serves the schema only to loopback, so it is read on the host itself (conftest's
`openapi`); the cases then go to the HTTPS address.

pytest runs it right after test_hostile.py (the file names sort so): the same bar (zero 5xx),
the same rate limit, about a minute of requests. schemathesis creates, replaces and deletes
messages of its own (any id it picks, including existing ones): run this against a test host
only.
"""

import copy
import json
import os
import ssl
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hostcheck import ApiKeys, Setting
from rawhttp import trusted_certificates

# Stops services, reboots, floods: only on hosts made for testing (see `make verify`).
# api_ready: web hosts only; waits out a deploy that is restarting things.
pytestmark = [pytest.mark.destructive, pytest.mark.usefixtures("api_ready")]

SCHEMATHESIS_RATE = "15/s"
SCHEMATHESIS_EXAMPLES = 50  # per operation and phase
SCHEMATHESIS_DEADLINE = 150  # seconds; a run takes about a minute

# schemathesis's default statuses for rejected input, plus nginx's 413 (client_max_body_size
# turns a body away before the app sees it). Every request carries an API key, from the
# environment (never on a command line); ignored_auth sends the writes without it too.
SCHEMATHESIS_CONFIG = """
[headers]
Authorization = "Bearer ${SCHEMATHESIS_API_KEY}"

[checks.negative_data_rejection]
expected-statuses = ["400", "401", "403", "404", "405", "406", "409", "413", "415", "422",
                     "428", "429", "5xx"]
"""


def with_edge_responses(schema: dict[str, Any]) -> dict[str, Any]:
    """The app's schema plus what nginx adds in front of it: 413 to an operation with a body."""
    schema = copy.deepcopy(schema)
    too_large = {
        "description": "The body is larger than nginx's client_max_body_size",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorMessage"}}},
    }
    for operations in schema["paths"].values():
        for operation in operations.values():
            if "requestBody" in operation:
                operation["responses"].setdefault("413", too_large)
    return schema


def schemathesis_report(output: str) -> str:
    """The failures part of the CLI's output, with hints for the usual outside causes."""
    start = output.find("\n====")  # the ERRORS or FAILURES heading, after the phases
    report = output[start + 1 :] if start >= 0 else output
    hints = []
    if "Received: 429" in output:
        hints.append("429: the pacing failed, or another client from this address spent the budget")
    if "database unavailable" in output:
        hints.append("503 database unavailable: was the database restarted (a deploy, a test)?")
    return "\n".join([*hints, report[-30_000:]])


def test_schemathesis_finds_nothing(
    openapi: dict[str, Any],
    address: str,
    setting: Setting,
    page_url: str,
    tls_context: ssl.SSLContext,
    api_keys: ApiKeys,
    tmp_path: Path,
) -> None:
    schema = tmp_path / "openapi.json"
    schema.write_text(json.dumps(with_edge_responses(openapi)))
    config = tmp_path / "schemathesis.toml"
    config.write_text(SCHEMATHESIS_CONFIG)
    ca_bundle = tmp_path / "ca.pem"
    ca_bundle.write_text(
        trusted_certificates(address, int(setting("nginx_https_port")), tls_context)
    )
    command = [
        str(Path(sys.executable).with_name("schemathesis")),
        f"--config-file={config}",
        "--no-color",
        "run",
        str(schema),
        f"--url={page_url}",
        "--checks=all",
        f"--max-examples={SCHEMATHESIS_EXAMPLES}",
        f"--rate-limit={SCHEMATHESIS_RATE}",
        "--workers=1",
        f"--tls-verify={ca_bundle}",
        "--request-timeout=10",
        "--generation-database=none",  # no .hypothesis directory
    ]
    try:
        result = subprocess.run(
            command,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=SCHEMATHESIS_DEADLINE,
            env={**os.environ, "SCHEMATHESIS_API_KEY": api_keys.valid},
        )
    except subprocess.TimeoutExpired as expired:
        output = expired.stdout.decode() if isinstance(expired.stdout, bytes) else expired.stdout
        pytest.fail(f"schemathesis ran over {SCHEMATHESIS_DEADLINE} s:\n{(output or '')[-5000:]}")
    assert result.returncode == 0, schemathesis_report(result.stdout + result.stderr)
