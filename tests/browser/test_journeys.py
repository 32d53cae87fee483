"""The first hour, as each role would live it, in English and Urdu, on a desktop and a phone.

Each journey starts from a fresh browser context and walks the pages that role reaches, through
the navigation and the forms a person uses; every page is checked by `Walk` (heading in the
walker's language, no console error or CSP report, no serious axe finding). The data the
journeys meet is made by two operators on two keys, so the walk also shows who sees what.
"""

import re
from collections.abc import Callable, Iterator

import pytest
from django.contrib.staticfiles.handlers import StaticFilesHandler
from django.test.testcases import LiveServerThread
from playwright.sync_api import Browser, Page, expect

from rivya_dashboard.accounts.models import Role, User
from rivya_dashboard.chat.models import ChatTurn
from rivya_dashboard.console.models import Generation
from rivya_dashboard.console.models_catalog import do_store_catalogue
from rivya_dashboard.sandbox.keys import issue_key
from rivya_dashboard.sandbox.models import SandboxSettings
from rivya_dashboard.vault.models import READ_ONLY_ACTIONS, Action, ApiKey, KeyGrant
from tests.browser.conftest import SCREENSHOTS, WatchedContext
from tests.browser.inline_worker import work_until
from tests.browser.journey import VARIANTS, Variant, Walk, dress
from tests.conftest import PASSWORD, make_member
from tests.views.test_chat import replies_in_threads, wait_for_quiet  # noqa: F401

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def console_url(replies_in_threads, settings) -> Iterator[str]:  # noqa: F811
    """The console on a threaded server of its own over a file database, as `serve` runs it."""
    server = LiveServerThread("127.0.0.1", StaticFilesHandler, port=0)
    server.daemon = True
    server.start()
    server.is_ready.wait()
    url = f"http://127.0.0.1:{server.port}"
    settings.RIVYA_PUBLIC_URL = url
    settings.RIVYA_POLL_SPEED = 5
    settings.RIVYA_SANDBOX_RATE_LIMIT = 10_000
    SandboxSettings.load()
    SandboxSettings.objects.update(clock_speed=4, token_delay_ms=40)
    yield url
    wait_for_quiet()
    server.terminate()


@pytest.fixture
def open_walk(browser: Browser, console_url: str) -> Iterator[Callable[..., Walk]]:
    watched = WatchedContext(browser, console_url)

    def open_walk(variant: Variant, member: User | None = None) -> Walk:
        if member is not None:
            member.language = variant.language
            member.save(update_fields=["language"])
        context = watched.open(member, viewport=variant.viewport)
        dress(context, variant, console_url)
        return Walk(context.new_page(), variant)

    yield open_walk
    watched.close()
    assert watched.csp_violations() == [], watched.complaints
    assert watched.script_errors == []


def submit(page: Page, form: str) -> None:
    page.locator(form).locator("button[type=submit]").last.click()


def create_owner(walk: Walk) -> None:
    page = walk.page
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/setup/$"))
    walk.check()
    page.fill("input[name=username]", "ada")
    page.fill("input[name=email]", "ada@example.test")
    page.fill("input[name=password1]", PASSWORD)
    page.fill("input[name=password2]", PASSWORD)
    submit(page, "main form")
    expect(page.locator("h1").first).to_contain_text("ada")
    walk.check()


def use_the_sandbox(walk: Walk) -> ApiKey:
    page = walk.page
    page.locator("form[action$='/keys/sandbox/'] button").first.click()
    expect(page).to_have_url(re.compile(r"/keys/\d+/$"))
    walk.check()
    return ApiKey.objects.get()


def generate(walk: Walk, model: str, prompt: str) -> Generation:
    page = walk.visit(f"/generate/?model={model}", "Generate")
    page.fill("[data-generate-form] [name=prompt]", prompt)
    expect(page.locator("#cost")).not_to_be_empty()
    submit(page, "[data-generate-form]")
    page.wait_for_url(re.compile(r"/generations/\d+/$"))
    job = Generation.objects.latest("pk")
    status = page.locator("[data-status]").first
    work_until(page, lambda: status.get_attribute("data-status") == "succeeded", timeout=60)
    expect(page.locator(".outputs img, .outputs video, .outputs audio").first).to_be_visible()
    walk.check()
    return job


def chat_with_stop_and_reload(walk: Walk) -> None:
    page = walk.visit("/chat/")
    box = page.locator("[data-composer] textarea[name=message]")
    box.fill("Tell me a long story about lighthouses")
    box.press("Enter")
    turn = page.locator("[data-turn]").last
    expect(turn).to_have_count(1)
    expect(turn.locator("[data-reply]")).not_to_be_empty(timeout=10_000)
    page.locator("[data-stop]:visible, [data-stop-form] button:visible").first.click()
    expect(turn).to_have_attribute("data-status", re.compile("stopped|done"), timeout=10_000)
    wait_for_quiet()
    kept = ChatTurn.objects.latest("pk")
    page.reload()
    walk.check()
    reply = page.locator(f"#turn-{kept.pk} [data-reply], #turn-{kept.pk} .reply-body").first
    expect(reply).not_to_be_empty()


def allow_local_webhook_targets(walk: Walk) -> None:
    page = walk.visit("/sandbox/control/", "Sandbox")
    form = page.locator("form[action$='/control/webhooks']")
    form.locator("input[name=allow_local_targets]").check()
    form.locator("button[type=submit]").click()
    walk.check("Sandbox")


def webhooks_inbox_and_doctor(walk: Walk) -> None:
    page = walk.visit("/inbox/", "Inboxes")
    form = page.locator("form[action$='/inbox/new/']")
    form.locator("input[name=name]").fill("Local")
    form.locator("button[type=submit]").click()
    expect(page).to_have_url(re.compile(r"/inbox/\d+/$"))
    walk.check()
    inbox_url = page.url
    page.locator("a[href*='/new/'][href*='inbox=']").first.click()
    walk.check()
    endpoint_form = page.locator("form[action$='/new/']")
    endpoint_form.locator("input[name=name]").fill("Local inbox")
    endpoint_form.locator("input[name=event_types]").first.check()
    endpoint_form.locator("button[type=submit]").click()
    walk.check()
    page.locator("main .actions a.button").click()
    walk.check()
    page.locator("form[action$='/test/'] button").click()
    walk.check()
    page.goto(inbox_url)

    def arrived() -> bool:
        page.reload()
        return page.locator("#request-list a[href*='/inbox/requests/']").count() > 0

    work_until(page, arrived, timeout=30)
    walk.check()
    page.locator("#request-list a[href*='/inbox/requests/']").first.click()
    walk.check()
    expect(page.locator("pre, code").first).to_be_visible()
    page.goto(inbox_url + "doctor/")
    walk.check("Signature doctor")


def invite(walk: Walk) -> str:
    page = walk.visit("/accounts/team/", "Team")
    form = page.locator("form[action$='/team/invites/']")
    form.locator("input[name=email]").fill("opal@example.test")
    form.locator("select[name=role]").select_option("operator")
    form.locator("button[type=submit]").click()
    walk.check()
    link = page.locator("input[readonly][value*='/invite/']").first.input_value()
    assert "/invite/" in link
    return link


@pytest.mark.parametrize("variant_name", ["en-desktop-light", "ur-phone-dark"])
def test_the_owner_first_hour(open_walk, variant_name: str) -> None:
    walk = open_walk(VARIANTS[variant_name])
    create_owner(walk)
    key = use_the_sandbox(walk)

    page = walk.visit("/models/", "Models")
    expect(page.locator(".model-card").first).to_be_visible()
    walk.visit("/", None)
    expect(page.locator("[data-testid=home-balance]")).to_be_visible()

    job = generate(walk, "z-image", "A lighthouse at dawn")
    page = walk.visit("/generations/gallery/", "Gallery")
    expect(page.locator(".gallery img").first).to_be_visible()
    page = walk.visit("/generations/", "History")
    expect(page.locator("#job-list")).to_contain_text(job.model_id)
    walk.visit("/files/", "Files")
    chat_with_stop_and_reload(walk)
    walk.visit("/credits/", "Credits")
    walk.visit("/usage/", "Usage")
    allow_local_webhook_targets(walk)
    webhooks_inbox_and_doctor(walk)
    invite(walk)
    walk.screenshot(SCREENSHOTS, "owner")
    assert key.label


@pytest.fixture
def team(console_url) -> dict:
    """Two operators on two keys: opal on A (with a cap), otto on B, each with a finished job;
    a viewer with a read-only grant on B, and one with no grant."""
    owner = make_member(Role.OWNER, "ada")
    keys = {}
    for label in ("A", "B"):
        key = ApiKey.objects.create(
            label=f"Sandbox {label}",
            environment="sandbox",
            base_url=f"{console_url}/sandbox/api/v1",
            added_by=owner,
        )
        key.store_secret(issue_key(credits=100_000))
        key.save(update_fields=["secret", "last4"])
        keys[label] = key
    do_store_catalogue(keys["A"].client().list_models())
    members = {
        "admin": make_member(Role.ADMIN, "adel"),
        "opal": make_member(Role.OPERATOR, "opal"),
        "otto": make_member(Role.OPERATOR, "otto"),
        "vera": make_member(Role.VIEWER, "vera"),
        "val": make_member(Role.VIEWER, "val"),
    }
    everything = [action for action in Action.values if action not in READ_ONLY_ACTIONS]
    KeyGrant.objects.create(
        member=members["opal"],
        key=keys["A"],
        actions=[*READ_ONLY_ACTIONS, *everything],
        daily_cap=5000,
    )
    KeyGrant.objects.create(member=members["otto"], key=keys["B"], actions=everything)
    KeyGrant.objects.create(member=members["vera"], key=keys["B"], actions=list(READ_ONLY_ACTIONS))
    for who, label, prompt in (("opal", "A", "Opal's own harbour"), ("otto", "B", "Otto's mill")):
        Generation.objects.create(
            member=members[who],
            member_name=who,
            key=keys[label],
            key_label=keys[label].label,
            model_id="z-image",
            prompt=prompt,
            idempotency_key=f"seed-{who}",
            status="succeeded",
        )
    return {"keys": keys, **members}


def history_prompts(walk: Walk) -> str:
    page = walk.visit("/generations/", "History")
    return page.locator("main").inner_text()


ROLE_VARIANTS = ["en-phone-dark", "ur-desktop-light"]


@pytest.mark.parametrize("variant_name", ROLE_VARIANTS)
def test_the_admin_first_hour(open_walk, team, variant_name: str) -> None:
    walk = open_walk(VARIANTS[variant_name], team["admin"])
    walk.visit("/", None)
    page = walk.visit("/models/", "Models")
    expect(page.locator(".model-card").first).to_be_visible()
    seen = history_prompts(walk)
    assert "otto" in seen and "opal" in seen
    generate(walk, "z-image", "An admin's lighthouse")
    walk.visit("/credits/", "Credits")
    walk.visit("/usage/", "Usage")
    walk.visit("/ledger/", "Call history")
    walk.visit("/webhooks/", "Webhooks")
    walk.visit("/keys/", "Keys")
    walk.visit("/accounts/audit/", "Audit")
    walk.screenshot(SCREENSHOTS, "admin")


@pytest.mark.parametrize("variant_name", ROLE_VARIANTS)
def test_the_operator_first_hour(open_walk, team, variant_name: str) -> None:
    walk = open_walk(VARIANTS[variant_name], team["opal"])
    walk.visit("/", None)
    page = walk.visit("/models/", "Models")
    expect(page.locator(".model-card").first).to_be_visible()
    page = walk.visit("/generate/?model=z-image", "Generate")
    expect(page.locator("#cost")).to_contain_text(re.compile("5,000|5000"))
    if walk.variant.phone:
        prompt = page.locator("[data-generate-form] [name=prompt]").bounding_box()
        assert page.locator("#cost").bounding_box()["y"] > prompt["y"], "cost above the prompt"
    seen = history_prompts(walk)
    assert "harbour" in seen or "opal" in seen
    assert "otto" not in seen
    generate(walk, "z-image", "An operator's lighthouse")
    walk.visit("/files/", "Files")
    page = walk.visit("/chat/")
    box = page.locator("[data-composer] textarea[name=message]")
    box.fill("Hello from the first hour")
    box.press("Enter")
    turn = page.locator("[data-turn]").last
    expect(turn).to_have_attribute("data-status", "done", timeout=20_000)
    walk.check()
    walk.visit("/credits/", "Credits")
    page = walk.visit("/usage/", "Usage")
    assert "otto" not in page.locator("main").inner_text()
    walk.screenshot(SCREENSHOTS, "operator")


@pytest.mark.parametrize("variant_name", ROLE_VARIANTS)
def test_a_viewer_with_a_read_only_grant(open_walk, team, variant_name: str) -> None:
    walk = open_walk(VARIANTS[variant_name], team["vera"])
    walk.visit("/", None)
    page = walk.visit("/models/", "Models")
    expect(page.locator(".model-card").first).to_be_visible()
    seen = history_prompts(walk)
    assert "otto" in seen
    assert "opal" not in seen
    walk.visit("/credits/", "Credits")
    nav = page.locator("#primary-nav")
    expect(nav.locator("a[href='/generate/']")).to_have_count(0)
    response = page.goto("/generate/")
    assert response is not None and response.status == 403
    walk.screenshot(SCREENSHOTS, "viewer-granted")


@pytest.mark.parametrize("variant_name", ROLE_VARIANTS)
def test_a_viewer_without_a_grant_sees_the_catalogue_only(open_walk, team, variant_name) -> None:
    walk = open_walk(VARIANTS[variant_name], team["val"])
    walk.visit("/", None)
    page = walk.visit("/models/", "Models")
    expect(page.locator(".model-card").first).to_be_visible()
    seen = history_prompts(walk)
    assert "otto" not in seen and "opal" not in seen
    walk.screenshot(SCREENSHOTS, "viewer-without-grant")
