"""The console in Urdu, in a real browser: the flows of the other browser tests done with Urdu
labels, and a screenshot of every main page (light and dark, desktop and phone) under
test-output/screenshots/ur-*.png.

Each page is also checked for what a screenshot review looks for in a right-to-left layout: the
page is `dir="rtl"`, the brand sits at the right, nothing scrolls sideways and no element clips
its own text (Nastaliq's tall letters are the usual victim).
"""

from collections.abc import Callable

import pytest
from playwright.sync_api import Page, expect

from rivya_dashboard.accounts.models import Role, User
from rivya_dashboard.console.models import Generation
from rivya_dashboard.vault.models import ApiKey
from rivya_dashboard.webhooks.models import Inbox
from tests.browser.conftest import DESKTOP, PHONE, png_file, prepare_sandbox, store_sandbox_key
from tests.browser.inline_worker import work_until
from tests.conftest import PASSWORD, make_member

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

URDU_BROWSER = {"locale": "ur-PK"}

LAYOUT_PROBLEMS = """() => {
  const problems = [];
  if (document.documentElement.dir !== "rtl") problems.push("html is not dir=rtl");
  const root = document.scrollingElement;
  if (root.scrollWidth > root.clientWidth + 1) {
    const outside = [...document.querySelectorAll("body *")].filter((element) => {
      const box = element.getBoundingClientRect();
      return box.width > 0 && (box.left < -1 || box.right > root.clientWidth + 1);
    });
    const culprit = outside.at(-1);
    problems.push(`the page scrolls sideways (${root.scrollWidth} > ${root.clientWidth}): `
      + `${culprit?.tagName}.${culprit?.className} “${culprit?.textContent.trim().slice(0, 40)}”`);
  }
  const brand = document.querySelector(".brand").getBoundingClientRect();
  if (brand.left + brand.width / 2 < window.innerWidth / 2) {
    problems.push("the brand is not at the right");
  }
  const clips = ["hidden", "clip"];
  for (const element of document.querySelectorAll("body *")) {
    const style = getComputedStyle(element);
    if (!clips.includes(style.overflowX) && !clips.includes(style.overflowY)) continue;
    if (style.textOverflow === "ellipsis" || element.getClientRects().length === 0) continue;
    if (element.closest(".visually-hidden, [hidden]") || !element.textContent.trim()) continue;
    if (element.matches("img, video, audio, select, textarea, option")) continue;
    // Visually hidden on purpose (table heads on a phone, screen-reader text).
    if (element.clientWidth <= 1 || element.clientHeight <= 1) continue;
    const wide = clips.includes(style.overflowX) && element.scrollWidth > element.clientWidth + 1;
    const tall = clips.includes(style.overflowY) && element.scrollHeight > element.clientHeight + 1;
    if (wide || tall) {
      const text = element.textContent.trim().slice(0, 40);
      problems.push(`${element.tagName}.${element.className} clips “${text}”`);
    }
  }
  return problems;
}"""


@pytest.fixture
def capture(screenshot: Callable[[Page, str], None]) -> Callable[[Page, str], None]:
    """Screenshots of the page, after checking its layout on a desktop and on a phone."""

    def check_and_shoot(page: Page, name: str) -> None:
        page.wait_for_load_state()
        size = page.viewport_size
        for viewport in (size, PHONE):
            page.set_viewport_size(viewport)
            assert page.evaluate(LAYOUT_PROBLEMS) == [], (name, viewport)
        page.set_viewport_size(size)
        screenshot(page, f"ur-{name}")

    return check_and_shoot


def fill_setup(page: Page, confirmation: str) -> None:
    page.get_by_label("صارف نام").fill("ada")
    page.get_by_label("ای میل").fill("ada@example.test")
    page.get_by_label("پاس ورڈ", exact=True).fill(PASSWORD)
    page.get_by_label("پاس ورڈ کی تصدیق").fill(confirmation)
    page.get_by_role("button", name="مالک اکاؤنٹ بنائیں").click()


def test_an_urdu_browser_sets_up_invites_and_signs_in(contexts, capture):
    page = contexts.open(**URDU_BROWSER).new_page()
    page.goto("/setup/")
    expect(page.locator("html")).to_have_attribute("lang", "ur")
    capture(page, "setup")
    fill_setup(page, "not-the-same-password")
    expect(page.get_by_text("دونوں پاس ورڈ ایک جیسے نہیں")).to_be_visible()
    capture(page, "setup-errors")
    fill_setup(page, PASSWORD)
    expect(page.get_by_role("heading", name="السلام علیکم، \u2068ada\u2069")).to_be_visible()
    capture(page, "dashboard")

    # The header switcher: English for a moment, saved on the member, then Urdu again.
    page.get_by_role("button", name="English").click()
    expect(page.get_by_role("heading", name="Hello, ada")).to_be_visible()
    assert User.objects.get(username="ada").language == "en"
    page.get_by_role("button", name="اردو").click()
    expect(page.get_by_role("heading", name="السلام علیکم، \u2068ada\u2069")).to_be_visible()
    assert User.objects.get(username="ada").language == "ur"
    # On a phone the switcher sits in the menu, so the menu button keeps its place in the bar.
    page.set_viewport_size(PHONE)
    expect(page.locator(".topbar-end").get_by_role("button", name="English")).to_be_hidden()
    page.get_by_role("button", name="مینو").click()
    expect(page.locator("#primary-nav").get_by_role("button", name="English")).to_be_visible()
    page.set_viewport_size(DESKTOP)

    page.goto("/accounts/team/")
    page.get_by_label("ای میل").fill("new.teammate@example.test")
    page.get_by_role("button", name="دعوتی لنک بنائیں").click()
    capture(page, "invite-created")
    link = page.get_by_label("دعوتی لنک").input_value()
    page.get_by_role("link", name="ٹیم پر واپس").click()
    expect(page.get_by_text("new.teammate@example.test")).to_be_visible()
    capture(page, "team")
    page.goto("/accounts/audit/")
    capture(page, "audit")
    page.goto("/no-such-page/")
    expect(page.get_by_role("heading", name="صفحہ نہیں ملا")).to_be_visible()
    capture(page, "404")

    visitor = contexts.open(**URDU_BROWSER).new_page()
    visitor.goto(link)
    capture(visitor, "invite-accept")
    visitor.goto("/accounts/login/")
    capture(visitor, "login")
    visitor.get_by_label("صارف نام").fill("ada")
    visitor.get_by_label("پاس ورڈ").fill("wrong-password")
    visitor.get_by_role("button", name="سائن ان").click()
    # The field names sit in bidi isolates (FSI … PDI) like every placeholder of the catalogue.
    wrong_login = "درست " + "\u2068" + "صارف نام" + "\u2069" + " اور پاس ورڈ درج کریں"
    expect(visitor.get_by_role("alert")).to_contain_text(wrong_login)
    capture(visitor, "login-errors")
    visitor.get_by_label("پاس ورڈ").fill(PASSWORD)
    visitor.get_by_role("button", name="سائن ان").click()
    expect(visitor.get_by_role("heading", name="السلام علیکم، \u2068ada\u2069")).to_be_visible()

    make_member(Role.VIEWER, "viewer")
    User.objects.filter(username="viewer").update(language="ur")
    viewer = contexts.open(User.objects.get(username="viewer")).new_page()
    viewer.goto("/accounts/team/")
    expect(viewer.get_by_role("heading", name="آپ کو اس تک رسائی نہیں")).to_be_visible()
    capture(viewer, "403")


@pytest.fixture
def urdu_owner_with_sandbox_key(live_server, settings) -> User:
    settings.RIVYA_POLL_SPEED = 5
    prepare_sandbox(settings, clock_speed=20, local_webhooks=True)
    owner = make_member(Role.OWNER, "owner")
    owner.language = "ur"
    owner.save()
    store_sandbox_key(owner, live_server.url)
    return owner


def test_an_urdu_member_generates_uploads_and_receives_webhooks(
    contexts, urdu_owner_with_sandbox_key, capture
):
    page = contexts.open(urdu_owner_with_sandbox_key).new_page()
    page.on("dialog", lambda dialog: dialog.accept())

    page.goto("/models/")
    page.get_by_role("button", name="API سے تازہ کریں").click()
    expect(page.get_by_text("کیٹلاگ تازہ ہو گیا")).to_be_visible()
    capture(page, "models")
    page.goto("/models/z-image/")
    capture(page, "model-detail")

    page.goto("/inbox/")
    page.get_by_label("نام").fill("مقامی ان باکس")
    page.get_by_label("اس کلید کی جابز اپ ڈیٹ کریں").select_option(label="Sandbox")
    page.get_by_role("button", name="ان باکس بنائیں").click()
    expect(page.locator("h1")).to_have_text("مقامی ان باکس")
    page.goto("/webhooks/")
    page.get_by_role("link", name="اینڈپوائنٹ شامل کریں").click()
    capture(page, "endpoint-form")
    page.get_by_label("نام").fill("Local inbox")
    page.get_by_label("ان باکس میں تصدیق کریں").select_option(label="مقامی ان باکس")
    page.get_by_role("button", name="اینڈپوائنٹ بنائیں").click()
    expect(page.get_by_text("یہ دستخطی سیکرٹ ابھی محفوظ کر لیں")).to_be_visible()
    capture(page, "webhook-secret-once")
    page.get_by_role("link", name="میں نے محفوظ کر لیا").click()
    capture(page, "endpoint")

    page.goto("/generate/?model=z-image")
    page.get_by_label("پرامپٹ").fill("شام کے وقت ایک لائٹ ہاؤس")
    capture(page, "generate")
    page.get_by_role("button", name="جنریٹ", exact=True).click()
    page.wait_for_url("**/generations/*/")
    status = page.locator(".job-status")
    work_until(page, lambda: status.get_attribute("data-status") == "succeeded", timeout=40)
    expect(page.locator(".toast")).to_contain_text("کامیاب")
    page.reload()
    expect(page.locator(".output > a img")).to_be_visible()
    capture(page, "job")
    assert Generation.objects.get().status == "succeeded"

    page.goto("/generations/")
    capture(page, "history")
    page.goto("/generations/gallery/")
    capture(page, "gallery")
    page.goto(f"/inbox/{Inbox.objects.get().pk}/")
    expect(page.locator('tr[data-verdict="verified"]').first).to_be_visible()
    capture(page, "inbox")
    page.locator('tr[data-verdict="verified"] a').first.click()
    capture(page, "inbox-request")

    page.goto("/files/")
    page.get_by_label("قسم").select_option("image")
    page.get_by_label("فائل", exact=True).set_input_files(files=[png_file("حوالہ.png", 64, 64)])
    page.get_by_role("button", name="اپ لوڈ کریں").click()
    expect(page.locator("#upload-region table")).to_contain_text("حوالہ.png")
    capture(page, "files")

    for path, name in [
        ("/", "home"),
        ("/credits/", "credits"),
        ("/usage/", "usage"),
        ("/keys/", "keys"),
        (f"/keys/{ApiKey.objects.get().pk}/", "key-detail"),
        ("/ledger/", "ledger"),
        ("/webhooks/", "webhooks"),
        ("/inbox/", "inboxes"),
        ("/chat/", "chat"),
        ("/sandbox/control/", "sandbox"),
    ]:
        page.goto(path)
        expect(page.locator("h1").first).to_be_visible()
        capture(page, name)
