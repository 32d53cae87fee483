"""Webhooks end to end in a real browser, sandbox → local inbox: create an endpoint that delivers
to an inbox (secret shown once), watch a generation's verified event arrive and finish the job,
rotate the secret and have the doctor explain a delivery signed with the old one, then make the
inbox answer 500 and watch the sandbox retry (fast retries)."""

import json
import time

import pytest
from playwright.sync_api import expect

from rivya_dashboard.accounts.models import Role
from rivya_dashboard.console import generations
from rivya_dashboard.console.models import Generation
from rivya_dashboard.rivya import signing
from rivya_dashboard.vault.models import ApiKey
from rivya_dashboard.webhooks.models import Inbox, InboxRequest
from tests.browser.conftest import prepare_sandbox, store_sandbox_key
from tests.browser.inline_worker import work_until
from tests.conftest import make_member

pytestmark = pytest.mark.browser


@pytest.fixture
def team_key(live_server, settings, monkeypatch) -> ApiKey:
    # Polling stays the fallback; pushed back here so the webhook is the path under test.
    monkeypatch.setattr(generations, "FIRST_POLL_SECONDS", 60.0)
    prepare_sandbox(settings, clock_speed=20, local_webhooks=True)
    owner = make_member(Role.OWNER, "owner")
    key = store_sandbox_key(owner, live_server.url)
    return key


def test_sandbox_to_inbox_verify_update_rotate_and_retry(page_as, team_key, screenshot):
    page = page_as(Role.OWNER, "owner")
    page.on("dialog", lambda dialog: dialog.accept())

    page.goto("/inbox/")
    page.get_by_label("Name").fill("Local dev")
    page.get_by_label("Update jobs of key").select_option(label="Sandbox")
    page.get_by_role("button", name="Create inbox").click()
    expect(page.locator("h1")).to_have_text("Local dev")
    inbox = Inbox.objects.get()

    page.goto("/webhooks/")
    page.get_by_role("link", name="Add an endpoint").click()
    page.get_by_label("Name").fill("Local inbox")
    page.get_by_label("Verify in inbox").select_option(label="Local dev")
    page.get_by_role("button", name="Create endpoint").click()
    expect(page.get_by_text("Store this signing secret now.")).to_be_visible()
    secret = page.locator("#signing-secret").input_value()
    assert secret.startswith("whsec_")
    screenshot(page, "webhook-secret-once")
    page.get_by_role("link", name="I stored it").click()
    expect(page.locator("h1")).to_contain_text("Local inbox")
    assert secret not in page.content()
    endpoint_page = page.url

    page.goto("/models/")
    page.get_by_role("button", name="Refresh from the API").click()
    page.goto("/generate/?model=z-image")
    page.get_by_label("Prompt").fill("A lighthouse at dusk")
    page.get_by_role("button", name="Generate", exact=True).click()
    page.wait_for_url("**/generations/*/")
    job = Generation.objects.get()
    path = page.locator("[data-update-path]")
    work_until(page, lambda: path.count() == 1, timeout=40)
    expect(path).to_have_attribute("data-update-path", "webhook")
    expect(page.locator(".job-status")).to_have_attribute("data-status", "succeeded")
    job.refresh_from_db()
    assert job.webhook_requests.get().verdict == "verified"
    screenshot(page, "webhook-job-updated")

    page.goto(f"/inbox/{inbox.pk}/")
    expect(page.locator('tr[data-verdict="verified"]')).to_contain_text("generation.succeeded")
    screenshot(page, "inbox")
    page.goto("/webhooks/")
    expect(page.locator("tbody")).to_contain_text("Local inbox")
    screenshot(page, "webhooks")
    page.get_by_role("link", name="Event catalogue").click()
    expect(page.locator(".event-card")).to_have_count(1)
    page.locator(".event-card summary").click()
    expect(page.locator(".event-card pre")).to_contain_text('"type": "generation.succeeded"')
    screenshot(page, "webhook-events")

    page.goto(endpoint_page)
    page.get_by_role("button", name="Rotate secret").click()
    new_secret = page.locator("#signing-secret").input_value()
    assert new_secret.startswith("whsec_") and new_secret != secret
    page.goto(f"/inbox/{inbox.pk}/")
    page.get_by_role("button", name="End the overlap").click()
    expect(page.get_by_text("Rotated out")).to_be_visible()

    # A sender that still signs with the old secret.
    body = json.dumps({"id": "evt_old", "type": "generation.succeeded"}).encode()
    headers = signing.sign(secret, body, msg_id="evt_old", timestamp=int(time.time()))
    answer = page.request.post(
        f"/hooks/{inbox.token}/",
        data=body,
        headers={**headers, "Content-Type": "application/json"},
        # The inbox page's live list keeps polling the same single-connection test database.
        timeout=30_000,
    )
    assert answer.status == 401
    page.goto(f"/inbox/{inbox.pk}/")
    page.locator('tr[data-verdict="rejected"] a').first.click()
    doctor = page.locator(".doctor")
    expect(doctor).to_have_attribute("data-cause", "rotated_secret")
    expect(doctor).to_contain_text("which this inbox no longer accepts")
    screenshot(page, "webhook-doctor")

    page.goto(f"/inbox/{inbox.pk}/")
    page.get_by_label("Answer with").select_option("500")
    page.get_by_role("button", name="Save settings").click()
    expect(page.get_by_text("Rehearsal: this inbox answers 500")).to_be_visible()
    page.goto(endpoint_page)
    page.get_by_role("button", name="Send a test event").click()
    expect(page.get_by_text("Test event sent")).to_be_visible()

    def retried() -> bool:
        tests = InboxRequest.objects.filter(inbox=inbox, response_status=500, verdict="verified")
        return tests.count() >= 2

    work_until(page, retried, timeout=20)
    page.goto(endpoint_page)
    first_row = page.locator("tr[data-delivery-status]").first
    expect(first_row).to_contain_text("500")
    attempts = first_row.locator("td").nth(3)
    assert int(attempts.inner_text()) >= 2
    screenshot(page, "webhook-endpoint-retries")
