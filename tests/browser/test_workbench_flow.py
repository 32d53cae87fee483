"""The API workbench in a real browser: a generation sent from the explorer lands on History, a
viewer's send is refused with the reason, "copy as cURL" replays against the live sandbox, the
inspector shows the calls behind a webhook test-send and a chat turn, and a canary key appears
nowhere: not in the pages, the stored calls or the copies."""

import json
import os
import re
import subprocess
import time
from collections.abc import Callable, Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from rivya_dashboard.accounts.models import Role, User
from rivya_dashboard.console.models import Generation
from rivya_dashboard.console.models_catalog import do_store_catalogue
from rivya_dashboard.rivya.client import RivyaClient
from rivya_dashboard.sandbox import webhooks_targets
from rivya_dashboard.sandbox.keys import issue_key
from rivya_dashboard.sandbox.models import SandboxSettings
from rivya_dashboard.vault.models import ApiKey, KeyGrant
from rivya_dashboard.workbench.models import ApiCall
from tests.browser.conftest import WatchedContext, prepare_sandbox, store_sandbox_key
from tests.conftest import make_member
from tests.inprocess import in_process_session
from tests.views.test_canary import database_dump

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def watched(browser: Browser, console_url: str) -> Iterator[WatchedContext]:
    contexts = WatchedContext(browser, console_url)
    yield contexts
    contexts.close()
    assert contexts.csp_violations() == [] and contexts.script_errors == []


@pytest.fixture
def page_as(watched: WatchedContext) -> Callable[..., Page]:
    def open_page(role: str, username: str, **options: object) -> Page:
        member = User.objects.filter(username=username).first() or make_member(role, username)
        return watched.open(member, **options).new_page()

    return open_page


@pytest.fixture
def canary(settings) -> str:
    settings.RIVYA_POLL_SPEED = 50
    prepare_sandbox(settings)
    return issue_key(credits=1000)


def in_process(key: ApiKey, raw: str) -> RivyaClient:
    """Set-up calls from the test thread, without a socket."""
    return RivyaClient(key.base_url, raw, session=in_process_session())


@pytest.fixture
def team_key(console_url, canary) -> ApiKey:
    key = store_sandbox_key(make_member(Role.OWNER, "owner"), console_url, raw=canary)
    do_store_catalogue(in_process(key, canary).list_models())
    return key


def explorer(page: Page, operation: str) -> None:
    page.goto(f"/workbench/?op={operation}")
    expect(page.locator("#operation-title")).to_be_visible()


def test_an_operator_generates_from_the_explorer_and_finds_it_on_history(
    page_as, team_key, canary, screenshot
):
    operator = make_member(Role.OPERATOR, "opal")
    KeyGrant.objects.create(member=operator, key=team_key, actions=["generate", "browse"])
    page = page_as(Role.OPERATOR, "opal")
    explorer(page, "createGeneration")
    expect(page.locator(".operation-list")).to_contain_text("Submit an image, video or audio")
    page.get_by_label("model", exact=True).fill("z-image")
    page.get_by_label("prompt", exact=True).fill("A kite over the dunes")
    idempotency = page.get_by_label("Idempotency-Key")
    expect(idempotency).to_have_value(re.compile(r"^explorer-[0-9a-f-]{36}$"))
    idempotency.fill("browser-kite-1")
    page.get_by_role("button", name="Send", exact=True).click()
    exchange = page.locator(".exchange")
    expect(exchange.locator("[data-exchange-status]")).to_have_text("202")
    expect(exchange).to_contain_text(f"Bearer rvya_sk_…{team_key.last4}")
    screenshot(page, "workbench-explorer")
    exchange.get_by_role("link", name="open it").click()
    expect(page.locator("h1")).to_contain_text("z-image")
    page.goto("/generations/")
    expect(page.get_by_text("A kite over the dunes")).to_be_visible()
    job = Generation.objects.get()
    assert job.member == operator and job.idempotency_key == "browser-kite-1"
    assert canary not in page.content()


def test_a_viewers_send_is_refused_with_the_reason(page_as, team_key):
    viewer = make_member(Role.VIEWER, "vera")
    KeyGrant.objects.create(member=viewer, key=team_key, actions=["browse", "read_history"])
    page = page_as(Role.VIEWER, "vera")
    explorer(page, "createGeneration")
    expect(page.locator("[data-refusal]")).to_contain_text("Not sent:")
    page.get_by_label("model", exact=True).fill("z-image")
    page.get_by_role("button", name="Send", exact=True).click()
    refusal = page.locator("[data-refusal]")
    expect(refusal).to_contain_text("Viewers")
    expect(page.locator(".exchange")).to_have_count(0)
    assert not Generation.objects.exists()
    assert not ApiCall.objects.filter(operation="createGeneration").exists()


def test_copy_as_curl_replays_against_the_sandbox_and_no_copy_holds_the_key(
    page_as, team_key, canary
):
    page = page_as(Role.OWNER, "owner")
    explorer(page, "createGeneration")
    page.get_by_label("model", exact=True).fill("z-image")
    page.get_by_label("prompt", exact=True).fill("replayed from a shell")
    page.get_by_role("button", name="Show the request without sending").click()
    expect(page.get_by_text("Nothing was sent")).to_be_visible()
    copies = {
        name: page.locator(f"#copy-{name}").text_content()
        for name in ("curl", "python", "fetch", "httpie")
    }
    assert all(copies.values()) and not any(canary in text for text in copies.values())
    assert "$RIVYA_API_KEY" in copies["curl"]
    env = {"PATH": os.environ["PATH"], "RIVYA_API_KEY": canary}
    done = subprocess.run(
        ["bash", "-c", copies["curl"]], env=env, capture_output=True, text=True, timeout=30
    )
    answer = json.loads(done.stdout)
    assert answer["status"] == "queued" and answer["model"] == "z-image", done.stderr
    assert canary not in page.content()


def test_the_inspector_shows_the_call_behind_a_webhook_test_send(
    page_as, team_key, canary, monkeypatch, screenshot
):
    monkeypatch.setattr(webhooks_targets, "resolve", lambda host, port: ["93.184.216.34"])
    endpoint = in_process(team_key, canary).create_webhook(
        "Receiver", "https://example.com/hook", ["generation.succeeded"]
    )
    page = page_as(Role.OWNER, "owner")
    # Both signed in before any page loads: the live server shares the test's database.
    urdu = page_as(Role.OWNER, "owner", locale="ur-PK")
    page.goto(f"/webhooks/{team_key.pk}/endpoints/{endpoint['id']}/")
    page.get_by_role("button", name="Send a test event").click()
    expect(page.get_by_text("Test event sent")).to_be_visible()
    page.get_by_role("link", name="Open in the inspector").click()
    rows = page.locator(".call-table tbody tr")
    test_send = rows.filter(has_text="/test")
    expect(test_send).to_have_count(1)
    expect(test_send).to_contain_text("202")
    screenshot(page, "workbench-inspector")
    test_send.get_by_role("link").click()
    expect(page.locator(".exchange")).to_contain_text("delivery")
    expect(page.locator(".exchange")).to_contain_text(f"Bearer rvya_sk_…{team_key.last4}")
    page.get_by_role("link", name="Open in explorer").click()
    expect(page.locator("#operation-title")).to_contain_text("/webhooks/{endpointId}/test")
    expect(page.locator('[name="path.endpointId"]')).to_have_value(endpoint["id"])
    dump = database_dump()
    assert canary not in dump and canary not in page.content()
    urdu.goto(f"/workbench/calls/?mention={endpoint['id']}")
    expect(urdu.locator("h1")).to_have_text("درخواست انسپکٹر")
    screenshot(urdu, "workbench-inspector-ur")
    urdu.goto("/workbench/?op=createWebhook")
    expect(urdu.locator("h1")).to_have_text("API ایکسپلورر")
    screenshot(urdu, "workbench-explorer-ur")


def test_the_inspector_shows_the_call_behind_a_chat_turn(page_as, console_url, canary):
    operator = make_member(Role.OPERATOR, "opal")
    key = store_sandbox_key(None, console_url, raw=canary)
    KeyGrant.objects.create(member=operator, key=key, actions=["chat"])
    do_store_catalogue(in_process(key, canary).list_models())
    page = page_as(Role.OPERATOR, "opal")
    page.goto("/chat/")
    page.get_by_label("Message").fill("Hello from the workbench test")
    page.get_by_label("Message").press("Control+Enter")
    request_link = page.locator("[data-turn]").last.locator("a[href*='request_id=']")
    expect(request_link).to_be_visible(timeout=15000)
    request_id = request_link.text_content()
    # The call is kept when its stream closes, a moment after the reply is on the page.
    deadline = time.monotonic() + 10
    while not ApiCall.objects.filter(request_id=request_id).exists():
        assert time.monotonic() < deadline, "the chat turn's call was not kept"
        time.sleep(0.1)
    request_link.click()
    rows = page.locator(".call-table tbody tr")
    expect(rows.first).to_contain_text("200")
    rows.first.get_by_role("link").click()
    expect(page.locator(".exchange")).to_contain_text("event: done")
    page.goto("about:blank")


def test_a_streamed_operation_arrives_event_by_event_and_stops(page_as, team_key, canary):
    SandboxSettings.objects.update(token_delay_ms=150)
    operator = make_member(Role.OPERATOR, "opal")
    KeyGrant.objects.create(member=operator, key=team_key, actions=["chat"])
    page = page_as(Role.OPERATOR, "opal")
    explorer(page, "streamChatCompletion")
    page.get_by_label("model", exact=True).fill("gpt-5-2-chat")
    page.get_by_label("message", exact=True).fill("Tell me a long story about kites")
    page.get_by_role("button", name="Send", exact=True).click()
    events = page.locator("[data-stream-events] li")
    expect(events.nth(2)).to_be_visible(timeout=10000)
    expect(page.locator("[data-exchange-status]")).to_have_text("200")
    page.get_by_role("button", name="Stop").click()
    expect(page.locator("[data-stream-note]")).to_contain_text("Stopped by you")
    shown = events.count()
    page.wait_for_timeout(800)
    assert events.count() == shown
    assert canary not in page.content()
