"""The page at / in a real browser: Debian's Chromium, driven by Playwright.

Uses conftest.py's fixtures ``page_url`` (the host's HTTPS base URL; its certificate
may be self-signed) and ``artifacts_dir`` (where the screenshot goes). Playwright's own
browser download cannot work here: the browser is Debian's package `chromium`, and a
missing package or browser fails the test (CI installs both).
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from browser import TIMEOUT_MS, PlaywrightError, chromium, expect, origin
from hostcheck import ApiKeys, AppLimits, wait_for

if TYPE_CHECKING:
    from playwright.sync_api import Browser, ConsoleMessage, Page, Request, Response

__all__ = ["chromium"]  # the fixture, used by the tests below


def is_post_of_a_message(response: Response) -> bool:
    return response.request.method == "POST" and urlsplit(response.url).path == "/messages"


@pytest.mark.destructive  # it posts
def test_the_page_posts_a_message_and_explains_a_refusal(
    page_url: str,
    app_limits: AppLimits,
    api_keys: ApiKeys,
    artifacts_dir: Path,
    chromium: Browser,
) -> None:
    # (page_url first: on a host that is not a web host it skips before a browser starts)
    base = page_url.rstrip("/")
    context = chromium.new_context(
        ignore_https_errors=True,
        viewport={"width": 1000, "height": 800},
        locale="en-US",
        timezone_id="UTC",
    )
    context.set_default_timeout(TIMEOUT_MS)
    expect.set_options(timeout=TIMEOUT_MS)

    problems: list[str] = []  # console errors, uncaught exceptions, failed requests
    foreign: list[str] = []  # requests to any origin but the page's

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            problems.append(f"console error: {message.text} at {message.location}")

    def on_request(request: Request) -> None:
        if origin(request.url) != origin(base):
            foreign.append(f"{request.method} {request.url}")

    def on_request_failed(request: Request) -> None:
        problems.append(f"request failed: {request.method} {request.url}: {request.failure}")

    context.on("request", on_request)
    page = context.new_page()
    page.on("console", on_console)
    page.on("pageerror", lambda error: problems.append(f"uncaught exception: {error}"))
    page.on("requestfailed", on_request_failed)

    created: list[int] = []  # ids of the messages to delete afterwards
    try:
        check_the_page(page, base, app_limits, api_keys.valid, problems, foreign, created)
        screenshot(page, artifacts_dir / "page.png")
    except BaseException:
        # Best effort: show how the page looked when the test failed.
        try:
            screenshot(page, artifacts_dir / "page-failed.png")
        except PlaywrightError:
            pass
        raise
    finally:
        for message_id in created:
            context.request.delete(f"{base}/messages/{message_id}", headers=api_keys.header())
        context.close()


def check_the_page(
    page: Page,
    base: str,
    app_limits: AppLimits,
    key: str,
    problems: list[str],
    foreign: list[str],
    created: list[int],
) -> None:
    """Load the page, post a message (its id goes into `created`), then a blank one."""
    response = page.goto(f"{base}/")
    assert response is not None and response.status == 200, f"GET / answered {response}"
    expect(page).to_have_title("Messages")

    messages = page.locator("#messages")
    status = page.locator("#status")
    message_input = page.locator("#message-input")
    post_button = page.locator("#post-button")

    # The list has loaded (the script ran), without an error, and the stylesheet applies.
    expect(messages).to_have_attribute("aria-busy", "false")
    expect(status).not_to_have_attribute("data-kind", "error")
    expect(post_button).to_have_css("font-weight", "600")

    page.locator("#key-input").fill(key)
    text = f"from the browser {time.time_ns()}"
    message_input.press_sequentially(text)
    limit = app_limits.message_max_length  # the page must show the limit the API enforces
    expect(page.locator("#counter")).to_contain_text(f"{len(text)} / {limit}")
    with page.expect_response(is_post_of_a_message) as posted:
        post_button.click()
    assert posted.value.status == 201, f"POST /messages answered {posted.value.status}"
    message_id = int(posted.value.json()["id"])
    created.append(message_id)

    first = messages.locator("> li").first
    expect(first).to_have_attribute("data-id", str(message_id))
    expect(first).to_contain_text(text)
    expect(status).to_have_attribute("data-kind", "success")
    expect(message_input).to_have_value("")

    assert problems == [], "\n".join(problems)
    assert foreign == [], "requests to other origins:\n" + "\n".join(foreign)

    # A blank message: the API refuses it (422) and the page says why.
    message_input.fill("   \n  ")
    with page.expect_response(is_post_of_a_message) as refused:
        post_button.click()
    assert refused.value.status == 422, f"POST /messages answered {refused.value.status}"
    reasons = [
        problem["msg"].removeprefix("Value error, ") for problem in refused.value.json()["detail"]
    ]
    expect(status).to_have_attribute("data-kind", "error")
    for reason in reasons:
        expect(status).to_contain_text(re.compile(re.escape(reason), re.IGNORECASE))
    expect(first).to_have_attribute("data-id", str(message_id))

    # Chromium reports the refused request in the console; nothing else may appear.
    unexpected = [p for p in problems if "status of 422" not in p]
    assert unexpected == [], "\n".join(unexpected)
    assert foreign == [], "requests to other origins:\n" + "\n".join(foreign)


def screenshot(page: Page, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=path, full_page=True, animations="disabled")


@pytest.mark.destructive  # it posts
def test_the_page_pages_through_messages(
    page_url: str,
    https: httpx.Client,
    writer: httpx.Client,
    api_keys: ApiKeys,
    chromium: Browser,
) -> None:
    """One message more than a page: the newest page shows the newest of them, Older shows
    the oldest one at its top, Newest goes back."""
    base = page_url.rstrip("/")
    context = chromium.new_context(ignore_https_errors=True, locale="en-US")
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    with page.expect_request(lambda r: urlsplit(r.url).path == "/messages") as listed:
        page.goto(f"{base}/")
    page_size = int(parse_qs(urlsplit(listed.value.url).query)["limit"][0])
    created: list[int] = []
    try:
        for n in range(page_size + 1):
            response = writer.post("/messages", json={"message": f"paging {n}"})
            assert response.status_code == 201, response.text
            created.append(int(response.json()["id"]))

        # The list the page got above may still be micro-cached: until nginx serves one
        # with these messages in it (and caches that one). Without a key, like the page.
        def newest_is_ours() -> bool:
            items = https.get(f"/messages?limit={page_size}").json()["items"]
            # The cached list may be one from before the first post: empty.
            return bool(items and items[0]["id"] == created[-1])

        assert wait_for(newest_is_ours, 10) is not None, "the list never showed them"
        page.reload()
        items = page.locator("#messages > li")
        expect(page.locator("#messages")).to_have_attribute("aria-busy", "false")
        expect(items).to_have_count(page_size)
        expect(items.first).to_have_attribute("data-id", str(created[-1]))
        expect(items.last).to_have_attribute("data-id", str(created[1]))
        page.locator("#older").click()
        expect(items.first).to_have_attribute("data-id", str(created[0]))
        page.locator("#newer").click()
        expect(items.first).to_have_attribute("data-id", str(created[-1]))
        expect(page.locator("#newer")).to_be_disabled()
    finally:
        for message_id in created:
            context.request.delete(f"{base}/messages/{message_id}", headers=api_keys.header())
        context.close()


@pytest.mark.destructive  # it posts
def test_the_page_asks_for_a_key_once_per_browser_session(
    page_url: str, api_keys: ApiKeys, chromium: Browser
) -> None:
    """No key: the page asks for one and sends nothing. A wrong key: refused, asked again.
    The right one: posted, kept for the tab (a reload asks nothing, and its list, fetched with
    the key, shows the post at once), never for another session."""
    base = page_url.rstrip("/")
    context = chromium.new_context(ignore_https_errors=True, locale="en-US")
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    posts: list[int] = []
    page.on("response", lambda r: posts.append(r.status) if is_post_of_a_message(r) else None)
    key_row, key_input = page.locator("#key-row"), page.locator("#key-input")
    status, post_button = page.locator("#status"), page.locator("#post-button")
    text = f"with a key {time.time_ns()}"
    created: list[int] = []  # read at once: a reload makes the answer's body unavailable
    try:
        page.goto(f"{base}/")
        expect(key_row).to_be_visible()
        page.locator("#message-input").fill(text)
        post_button.click()
        expect(status).to_contain_text("Enter your API key")
        assert posts == []

        key_input.fill("not-" + api_keys.valid)
        with page.expect_response(is_post_of_a_message):
            post_button.click()
        expect(status).to_contain_text("API key was not accepted")
        expect(key_row).to_be_visible()

        key_input.fill(api_keys.valid)
        with page.expect_response(is_post_of_a_message) as posted:
            post_button.click()
        assert posted.value.status == 201
        created.append(int(posted.value.json()["id"]))
        expect(key_row).to_be_hidden()
        with page.expect_request(lambda r: urlsplit(r.url).path == "/messages") as listed:
            page.reload()
        assert listed.value.headers.get("authorization") == f"Bearer {api_keys.valid}"
        expect(key_row).to_be_hidden()
        expect(page.locator("#messages > li").first).to_contain_text(text)
        assert posts == [401, 201], posts
    finally:
        for message_id in created:
            context.request.delete(f"{base}/messages/{message_id}", headers=api_keys.header())
        context.close()
    other = chromium.new_context(ignore_https_errors=True)
    try:
        fresh = other.new_page()
        fresh.goto(f"{base}/")
        expect(fresh.locator("#key-row")).to_be_visible()
    finally:
        other.close()
