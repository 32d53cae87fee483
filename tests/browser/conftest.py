"""Playwright fixtures: Debian's chromium against pytest-django's live server.

Every page a test opens is watched: a Content-Security-Policy violation or an uncaught script
error fails the test at teardown, so later browser tests get that check for free.
"""

import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.contrib.staticfiles.handlers import StaticFilesHandler
from django.test import Client
from django.test.testcases import LiveServerThread
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright

from rivya_dashboard.accounts.models import Role, User
from rivya_dashboard.chat import relay
from rivya_dashboard.console.models_catalog import do_store_catalogue
from rivya_dashboard.sandbox.faults import set_global_faults
from rivya_dashboard.sandbox.keys import issue_key
from rivya_dashboard.sandbox.models import SandboxSettings, WebhookSettings
from rivya_dashboard.vault.models import ApiKey, KeyGrant
from tests.conftest import make_member
from tests.png import png_bytes
from tests.views.test_chat import wait_for_quiet

# Playwright's sync API keeps an event loop running in the test thread; Django would otherwise
# refuse the ORM calls that fixtures and tests make next to it.
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# How long an action or an expectation waits for the page: CI runs its two passes at once on two
# cores, so a page may take seconds to answer; a missing element still fails, only later.
WAIT_MS = 10_000
expect.set_options(timeout=WAIT_MS)
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
# CI runs the SQLite and PostgreSQL passes at once: each writes its own screenshots.
POSTGRES_PASS = "postgresql" in django_settings.DATABASES["default"]["ENGINE"]
SCREENSHOTS = (
    Path(django_settings.BASE_DIR)
    / "test-output"
    / ("screenshots-postgresql" if POSTGRES_PASS else "screenshots")
)
SKY_BLUE = b"\x30\x90\xe0"


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    executable = shutil.which("chromium")
    if executable is None:
        pytest.fail("Browser tests need Debian's chromium: apt-get install chromium")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


class WatchedContext:
    """Opens browser contexts on the live server and remembers what their pages complained of."""

    def __init__(self, browser: Browser, base_url: str) -> None:
        self.browser = browser
        self.base_url = base_url
        self.contexts: list[BrowserContext] = []
        self.complaints: list[str] = []
        self.script_errors: list[str] = []

    def open(self, member: User | None = None, **options: object) -> BrowserContext:
        """A fresh context; with a member, it starts signed in as them (no login form)."""
        options.setdefault("viewport", DESKTOP)
        context = self.browser.new_context(base_url=self.base_url, **options)
        context.set_default_timeout(WAIT_MS)
        context.on("console", lambda message: self.complaints.append(message.text))
        context.on("weberror", lambda error: self.script_errors.append(str(error.error)))
        if member is not None:
            context.add_cookies([session_cookie(member, self.base_url)])
        self.contexts.append(context)
        return context

    def csp_violations(self) -> list[str]:
        return [text for text in self.complaints if "Content Security Policy" in text]

    def close(self) -> None:
        for context in self.contexts:
            context.close()


@pytest.fixture(autouse=True)
def _console_knows_its_address(request: pytest.FixtureRequest, settings) -> None:
    """The live server is where this console listens, as `serve` would tell its processes."""
    for name in ("live_server", "console_url"):
        if name in request.fixturenames:
            server = request.getfixturevalue(name)
            settings.RIVYA_LISTEN_URL = getattr(server, "url", server)
            return


@pytest.fixture
def contexts(browser: Browser, live_server, transactional_db) -> Iterator[WatchedContext]:
    watched = WatchedContext(browser, live_server.url)
    yield watched
    watched.close()
    assert watched.csp_violations() == []
    assert watched.script_errors == []


@pytest.fixture
def page(contexts: WatchedContext) -> Page:
    """A visitor's page, not signed in."""
    return contexts.open().new_page()


def session_cookie(member: User, url: str) -> dict[str, str]:
    client = Client()
    client.force_login(member)
    cookie = client.cookies[django_settings.SESSION_COOKIE_NAME]
    return {"name": cookie.key, "value": cookie.value, "url": url}


@pytest.fixture
def page_as(contexts: WatchedContext) -> Callable[..., Page]:
    """page_as(role) or page_as(role, "name", **context options): a page signed in as that member.

    The member is created with the role unless one by that username already exists.
    """

    def open_page(role: str, username: str | None = None, **options: object) -> Page:
        member = User.objects.filter(username=username or role).first()
        return contexts.open(member or make_member(role, username), **options).new_page()

    return open_page


@pytest.fixture
def screenshot() -> Callable[[Page, str], None]:
    """screenshot(page, name): the page in light and dark at desktop width, and on a phone."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def shoot(page: Page, name: str) -> None:
        viewport = page.viewport_size
        for scheme in ("light", "dark"):
            page.emulate_media(color_scheme=scheme)
            page.set_viewport_size(DESKTOP)
            page.screenshot(path=SCREENSHOTS / f"{name}-desktop-{scheme}.png", full_page=True)
            page.set_viewport_size(PHONE)
            page.screenshot(path=SCREENSHOTS / f"{name}-phone-{scheme}.png", full_page=True)
        page.emulate_media(color_scheme="null")
        page.set_viewport_size(viewport)

    return shoot


def prepare_sandbox(
    settings, *, clock_speed: float | None = None, local_webhooks: bool = False
) -> None:
    """The live sandbox for a flow: its rate limit out of the way, its clock at `clock_speed`
    when given, and with `local_webhooks` deliveries to this machine, retried without waiting."""
    settings.RIVYA_SANDBOX_RATE_LIMIT = 10_000
    SandboxSettings.load()
    if clock_speed is not None:
        SandboxSettings.objects.update(clock_speed=clock_speed)
    if local_webhooks:
        WebhookSettings.load()
        WebhookSettings.objects.update(allow_local_targets=True, fast_retries=True)


def store_sandbox_key(
    owner: User | None,
    live_url: str,
    credits: int = 1000,
    *,
    raw: str | None = None,
    label: str = "Sandbox",
) -> ApiKey:
    """A team key on the live server's own sandbox, holding a new sandbox account (or the account
    of `raw`, a sandbox key the test issued itself)."""
    key = ApiKey.objects.create(
        label=label,
        environment="sandbox",
        base_url=f"{live_url}/sandbox/api/v1",
        added_by=owner,
    )
    key.store_secret(raw or issue_key(credits=credits))
    key.save(update_fields=["secret", "last4"])
    return key


def png_file(name: str, width: int, height: int) -> dict:
    """A PNG for Playwright's set_input_files, as a person would pick one."""
    return {"name": name, "mimeType": "image/png", "buffer": png_bytes(width, height, SKY_BLUE)}


@pytest.fixture
def console_url(file_backed_db) -> Iterator[str]:
    """A threaded server on a file database of its own, for chat and the workbench: replies are
    read and saved by background threads, and the explorer's call to the sandbox, the sandbox's
    answer and the chat relay each run on a connection of their own, as under gunicorn."""
    server = LiveServerThread("127.0.0.1", StaticFilesHandler, port=0)
    server.daemon = True
    server.start()
    server.is_ready.wait()
    yield f"http://127.0.0.1:{server.port}"
    wait_for_quiet()
    # A request still being answered (an event stream) closes its database connection as it
    # ends; it must end before the test database goes away.
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline and any(
        "process_request_thread" in thread.name for thread in threading.enumerate()
    ):
        time.sleep(0.05)
    server.terminate()
    wait_for_quiet()
    time.sleep(relay.FLUSH_SECONDS * 3)  # the saver closes its connection once idle


@pytest.fixture
def operator_page(browser: Browser, console_url: str) -> Iterator[Page]:
    """Operator "opal", granted chat on a sandbox key, in a watched page of the threaded server."""
    operator = make_member(Role.OPERATOR, "opal")
    key = store_sandbox_key(None, console_url, raw=issue_key())
    KeyGrant.objects.create(member=operator, key=key, actions=["chat"])
    do_store_catalogue(key.client().list_models())
    watched = WatchedContext(browser, console_url)
    yield watched.open(operator).new_page()
    watched.close()
    set_global_faults({})
    assert watched.csp_violations() == [], watched.complaints
    assert watched.script_errors == []


def shoot_without_caret(page: Page, shoot: Callable[[Page, str], None], name: str) -> None:
    """Playwright hides a focused field's caret with an injected style, which the CSP refuses,
    and leaves empty style attributes behind, which htmx would copy (another refusal)."""
    page.evaluate("document.activeElement && document.activeElement.blur()")
    shoot(page, name)
    page.evaluate("document.querySelectorAll('[style]').forEach(e => e.removeAttribute('style'))")
