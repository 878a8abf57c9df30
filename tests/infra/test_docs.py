"""/docs (Swagger UI) and /redoc render in Chromium, from an address on nginx_admin_allow,
with zero console errors under their Content-Security-Policy: every asset comes from the host.

The browser runs on the controller, which is not an admin address: each of its requests to the
site is made again by curl on the host itself (loopback, on the list by default), and the
answer, headers included (the CSP too), handed back to the browser. A request to any other
origin is refused and fails the test.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import pytest
from browser import TIMEOUT_MS, chromium, expect, origin
from hostcheck import Setting, on_the_host_curl

if TYPE_CHECKING:
    from playwright.sync_api import ConsoleMessage, Route

__all__ = ["chromium"]  # the fixture, used below

# ReDoc's bundle shows its maker's logo from their CDN, whatever the options, and hides it
# when it fails to load: the policy blocking it is the policy at work, not an error.
REDOC_LOGO_BLOCKED = "Loading the image 'https://cdn.redoc.ly/redoc/logo-mini.svg' violates"

# Set by nginx for the answer as a whole, or by the browser's own framing.
NOT_HANDED_BACK = {"content-length", "content-encoding", "transfer-encoding", "connection"}


def fetched_on_the_host(host: Any, port: int, path: str) -> tuple[int, dict[str, str], bytes]:
    """GET `path` with curl on the host: the status, the headers and the body."""
    curl = on_the_host_curl(host, port, path, '-D "$tmp/head" -o "$tmp/body"')
    out = host.check_output(
        f'tmp=$(mktemp -d) && {curl} && cat "$tmp/head" && echo "#body" && base64 -w0 "$tmp/body";'
        ' status=$?; rm -rf "$tmp"; exit $status'
    )
    head, _, body = out.partition("#body")
    status_line, *lines = [line for line in head.splitlines() if line.strip()]
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        if name.lower() not in NOT_HANDED_BACK:
            headers[name.lower()] = value.strip()
    return int(status_line.split()[1]), headers, base64.b64decode(body.strip())


@pytest.mark.parametrize(
    ("path", "rendered", "title"),
    [
        ("/docs", ".swagger-ui .info .title", "Messages"),
        ("/redoc", "h1", "Messages"),
    ],
)
def test_the_api_documentation_renders_offline_from_an_admin_address(
    host: Any,
    page_url: str,
    setting: Setting,
    artifacts_dir: Path,
    chromium: Any,
    path: str,
    rendered: str,
    title: str,
) -> None:
    if "127.0.0.1" not in setting("nginx_admin_allow"):
        pytest.skip("loopback is not on nginx_admin_allow")
    port = int(setting("nginx_https_port"))
    problems: list[str] = []
    fetched: list[str] = []

    def relay(route: Route) -> None:
        url = route.request.url
        if origin(url) != origin(page_url):
            problems.append(f"request to another origin: {url}")
            route.abort()
            return
        parts = urlsplit(url)
        fetched.append(parts.path)
        status, headers, body = fetched_on_the_host(
            host, port, parts.path + (f"?{parts.query}" if parts.query else "")
        )
        route.fulfill(status=status, headers=headers, body=body)

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error" and not message.text.startswith(REDOC_LOGO_BLOCKED):
            problems.append(f"console error: {message.text}")

    context = chromium.new_context(ignore_https_errors=True)
    context.set_default_timeout(TIMEOUT_MS)
    context.route("**/*", relay)
    page = context.new_page()
    page.on("console", on_console)
    page.on("pageerror", lambda error: problems.append(f"uncaught exception: {error}"))
    try:
        response = page.goto(f"{page_url}{path}")
        assert response is not None and response.status == 200, response
        assert "script-src 'self'" in response.headers["content-security-policy"]
        expect(page.locator(rendered).first).to_contain_text(title, timeout=TIMEOUT_MS)
        # Every operation of the schema is listed.
        expect(page.get_by_text("/messages/{message_id}").first).to_be_visible()
        page.wait_for_load_state("networkidle")
        page.screenshot(path=artifacts_dir / f"api{path.replace('/', '-')}.png", full_page=True)
    finally:
        context.close()
    assert "/openapi.json" in fetched, fetched
    assert problems == [], "\n".join(problems)
