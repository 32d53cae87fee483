"""Every main page, as an owner with a working sandbox key and some history, checked for what
a screenshot review misses: axe-core's serious and critical findings (contrast among them) in
both themes, numbers left without bidi isolation next to Urdu words, and a navigation bar that
wraps on a laptop. Screenshots of each page land in test-output/screenshots/quality-*.png.
"""

import json
import re
from collections.abc import Iterator

import pytest
from axe_playwright_python.sync_playwright import Axe
from django.test import Client
from django.urls import reverse
from django.utils import translation
from playwright.sync_api import Page, expect

from rivya_dashboard.accounts.models import Role, User
from rivya_dashboard.console import credits, generations, models_catalog
from rivya_dashboard.console.models import CatalogueModel, Generation, UploadedFile
from rivya_dashboard.vault.models import ApiKey
from rivya_dashboard.webhooks import inboxes
from rivya_dashboard.webhooks.models import Inbox
from tests.browser.conftest import DESKTOP, PHONE, prepare_sandbox, store_sandbox_key
from tests.browser.inline_worker import run_ready_tasks
from tests.conftest import make_member

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

LAPTOP = {"width": 1024, "height": 768}

# Arabic-script letters next to a digit with only spaces or punctuation between them, outside any
# isolate (U+2066…U+2069 in the text, or an element that isolates: <bdi>, a block, dir=…).
UNISOLATED_DIGITS = r"""() => {
  // An SVG <title> or <desc> is never drawn; each SVG <text> is laid out on its own.
  const skip = "script, style, template, textarea, select, [hidden], .visually-hidden, title, desc";
  const isolates = (element) => {
    const style = getComputedStyle(element);
    return element.tagName === "BDI" || element.tagName === "text" || element.hasAttribute("dir")
      || ["isolate", "isolate-override", "plaintext"].includes(style.unicodeBidi)
      || !style.display.startsWith("inline");
  };
  const runs = [];
  const flatten = (element) => {
    let text = "";
    for (const child of element.childNodes) {
      if (child.nodeType === Node.TEXT_NODE) text += child.data;
      else if (child.nodeType !== Node.ELEMENT_NODE || child.matches(skip)) continue;
      else if (isolates(child)) { runs.push(flatten(child)); text += " \u2068_\u2069 "; }
      else text += flatten(child);
    }
    return text;
  };
  runs.push(flatten(document.body));
  const bare = (text) => {
    let previous;
    do { previous = text; text = text.replace(/[\u2066-\u2068][^\u2066-\u2069]*\u2069/g, "_"); }
    while (text !== previous);
    return text;
  };
  const letter = String.raw`[\p{Script=Arabic}&&\p{L}]`;
  const between = String.raw`[\s\p{P}\p{S}]{0,3}`;
  const mixed = new RegExp(`[0-9]${between}${letter}|${letter}${between}[0-9]`, "v");
  return runs.map(bare).filter((text) => mixed.test(text))
    .map((text) => text.replace(/\s+/g, " ").trim().slice(0, 120));
}"""


NAV_ROWS = """() => {
  const nav = document.querySelector("#primary-nav");
  const tops = new Set([...nav.querySelectorAll(":scope > ul > li")]
    .filter((item) => item.getClientRects().length)
    .map((item) => Math.round(item.getBoundingClientRect().top)));
  return {rows: tops.size};
}"""


@pytest.fixture
def owner_with_history(live_server, settings) -> Iterator[User]:
    """An owner whose sandbox key has a catalogue, a balance, a finished job and an inbox."""
    settings.RIVYA_POLL_SPEED = 1000
    prepare_sandbox(settings, clock_speed=1000)
    owner = make_member(Role.OWNER, "owner")
    key = store_sandbox_key(owner, live_server.url)
    models_catalog.do_refresh(key, owner)
    credits.do_read_balance(key, owner)
    model = CatalogueModel.objects.get(model_id="z-image").data
    generations.do_submit(
        owner, key, model, nonce="quality-1", prompt="a lighthouse at dusk", params={}
    )
    for _ in range(40):
        run_ready_tasks()
        if Generation.objects.filter(status="succeeded").exists():
            break
    UploadedFile.objects.create(
        remote_id="file_quality",
        key=key,
        key_label=key.label,
        uploader=owner,
        uploader_name=owner.username,
        kind="audio",
        name="clip.wav",
        mime_type="audio/wav",
        size_bytes=48_000,
        url=f"{live_server.url}/sandbox/api/media/file_quality.wav",
        duration_seconds=1.5,
        duration_token="dt_quality",
    )
    inbox = inboxes.do_create_inbox(owner, name="Local", key=key)
    Client().post(
        reverse("inbox-receive", args=[inbox.token]),
        data=b'{"id":"evt_1","type":"generation.succeeded","data":{"id":"task_1"}}',
        content_type="application/json",
    )
    yield owner


def main_pages() -> list[tuple[str, str]]:
    job = Generation.objects.first()
    inbox = Inbox.objects.first()
    key = ApiKey.objects.first()
    return [
        ("home", "/"),
        ("models", "/models/"),
        ("model-detail", "/models/z-image/"),
        ("generate", "/generate/?model=z-image"),
        ("side-by-side", reverse("side-by-side")),
        ("history", "/generations/"),
        ("job", f"/generations/{job.pk}/"),
        ("gallery", "/generations/gallery/"),
        ("files", "/files/"),
        ("credits", "/credits/"),
        ("usage", "/usage/"),
        ("keys", "/keys/"),
        ("key-detail", f"/keys/{key.pk}/"),
        ("ledger", "/ledger/"),
        ("webhooks", "/webhooks/"),
        ("inboxes", "/inbox/"),
        ("inbox", f"/inbox/{inbox.pk}/"),
        ("inbox-request", f"/inbox/requests/{inbox.requests.first().pk}/"),
        ("doctor", f"/inbox/{inbox.pk}/doctor/"),
        ("team", "/accounts/team/"),
        ("audit", "/accounts/audit/"),
        ("sandbox", "/sandbox/control/"),
    ]


def serious_violations(axe: Axe, page: Page) -> list[str]:
    results = axe.run(page, options={"resultTypes": ["violations"]})
    return [
        f"{rule['id']}: {node['target']} {node.get('failureSummary', '')[:160]}"
        for rule in results.response["violations"]
        if rule["impact"] in ("serious", "critical")
        for node in rule["nodes"]
    ]


def test_every_main_page_passes_axe_in_both_themes(contexts, owner_with_history, screenshot):
    page = contexts.open(owner_with_history).new_page()
    axe = Axe()
    found = {}
    for name, path in main_pages():
        page.goto(path)
        expect(page.locator("h1").first).to_be_visible()
        for scheme in ("light", "dark"):
            page.emulate_media(color_scheme=scheme)
            problems = serious_violations(axe, page)
            if problems:
                found[f"{name} ({scheme})"] = problems
        screenshot(page, f"quality-{name}")
    assert found == {}, json.dumps(found, ensure_ascii=False, indent=1)


def test_urdu_pages_isolate_every_number_next_to_urdu_words(contexts, owner_with_history):
    User.objects.filter(pk=owner_with_history.pk).update(language="ur")
    page = contexts.open(User.objects.get(pk=owner_with_history.pk)).new_page()
    found = {}
    for name, path in main_pages():
        page.goto(path)
        expect(page.locator("html")).to_have_attribute("lang", "ur")
        mixed = page.evaluate(UNISOLATED_DIGITS)
        if mixed:
            found[name] = mixed
    assert found == {}, json.dumps(found, ensure_ascii=False, indent=1)


@pytest.mark.parametrize("language", ["en", "ur"])
def test_the_owner_navigation_fits_one_line_on_a_laptop(contexts, language, screenshot):
    owner = make_member(Role.OWNER, "owner")
    User.objects.filter(pk=owner.pk).update(language=language)
    page = contexts.open(User.objects.get(pk=owner.pk)).new_page()
    page.goto("/")
    for viewport in (DESKTOP, LAPTOP):
        page.set_viewport_size(viewport)
        assert page.evaluate(NAV_ROWS) == {"rows": 1}, viewport
    admin = "Admin" if language == "en" else "ایڈمن"
    nav = page.locator("#primary-nav")
    # The Admin menu opens from the keyboard and closes on Escape, back on its summary.
    nav.get_by_text(admin, exact=True).focus()
    page.keyboard.press("Enter")
    expect(nav.get_by_role("link", name=section(language, "Team"))).to_be_visible()
    screenshot(page, f"nav-admin-open-{language}")
    page.keyboard.press("Escape")
    expect(nav.get_by_role("link", name=section(language, "Team"))).to_be_hidden()
    # A phone's menu holds every section, the Admin ones one tap further.
    page.set_viewport_size(PHONE)
    page.get_by_role("button", name="Menu" if language == "en" else "مینو").click()
    nav.get_by_text(admin, exact=True).click()
    for label in ("Models", "Workbench", "Keys", "Team", "Audit", "Security", "Sandbox"):
        expect(nav.get_by_role("link", name=section(language, label), exact=True)).to_be_visible()
    screenshot(page, f"nav-phone-{language}")


def section(language: str, label: str) -> str:
    with translation.override(language):
        return translation.gettext(label)


LOOKS = """(selector) => {
  const style = getComputedStyle(document.querySelector(selector));
  return [style.backgroundColor, style.color, style.borderTopColor, style.borderTopLeftRadius,
          style.height, style.fontSize];
}"""


def test_date_time_inputs_look_like_the_other_inputs_in_both_themes(
    contexts, live_server, settings
):
    owner = make_member(Role.OWNER, "owner")
    key = store_sandbox_key(owner, live_server.url)
    page = contexts.open(owner).new_page()
    page.goto(f"/keys/{key.pk}/")
    for scheme in ("light", "dark"):
        page.emulate_media(color_scheme=scheme)
        expires = page.evaluate(LOOKS, 'input[type="datetime-local"]')
        assert expires == page.evaluate(LOOKS, 'input[type="number"]'), scheme


PICKS = """() => [...document.querySelectorAll("div.model-picks label")].map((label) => {
  const box = label.getBoundingClientRect();
  const tick = label.querySelector("input").getBoundingClientRect();
  return {top: Math.round(box.top), height: Math.round(box.height),
          tickOffset: Math.round(tick.top - box.top)};
})"""


def test_side_by_side_picks_align_and_files_explain_the_duration_token(
    contexts, owner_with_history
):
    page = contexts.open(owner_with_history).new_page()
    page.goto(reverse("side-by-side"))
    picks = page.evaluate(PICKS)
    assert len({pick["tickOffset"] for pick in picks}) == 1, picks
    rows: dict[int, set[int]] = {}
    for pick in picks:
        rows.setdefault(pick["top"], set()).add(pick["height"])
    assert all(len(heights) == 1 for heights in rows.values()), rows
    page.goto(reverse("files"))
    heading = page.get_by_role("columnheader", name="Duration token")
    expect(heading).to_have_accessible_description(re.compile("proof of how long"))


def test_a_result_opens_in_the_page_viewer_and_escape_closes_it(
    contexts, owner_with_history, screenshot
):
    job = Generation.objects.get()
    page = contexts.open(owner_with_history).new_page()
    page.goto(f"/generations/{job.pk}/")
    page.locator(".outputs img").first.click()
    viewer = page.get_by_role("dialog", name="Result 1")
    expect(viewer).to_be_visible()
    expect(viewer.get_by_role("link", name="Download")).to_have_attribute("download", "")
    expect(viewer.get_by_role("link", name="original link")).to_be_visible()
    screenshot(page, "result-viewer")
    page.keyboard.press("Escape")
    expect(viewer).to_be_hidden()
    assert page.url.endswith(f"/generations/{job.pk}/#results")


def test_an_upload_shows_percent_and_size_and_can_be_cancelled(contexts, live_server, settings):
    settings.RIVYA_SANDBOX_RATE_LIMIT = 10_000
    owner = make_member(Role.OWNER, "owner")
    store_sandbox_key(owner, live_server.url)
    page = contexts.open(owner).new_page()
    page.goto(reverse("files"))
    page.get_by_label("Kind").select_option("image")
    page.get_by_label("File", exact=True).set_input_files(
        files=[{"name": "big.png", "mimeType": "image/png", "buffer": bytes(3 * 1024 * 1024)}],
        timeout=30_000,
    )
    # A slow line, so the upload is still running when Cancel is pressed.
    network = page.context.new_cdp_session(page)
    network.send("Network.enable")
    network.send(
        "Network.emulateNetworkConditions",
        {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": 300_000},
    )
    page.get_by_role("button", name="Upload", exact=True).click()
    status = page.locator("[data-upload-text]")
    expect(status).to_have_text(re.compile(r"^\d+% · [\d.]+ MB of 3\.0 MB$"))
    page.get_by_role("button", name="Cancel upload").click()
    expect(page.locator("[data-upload-progress]")).to_be_hidden()
    assert not UploadedFile.objects.exists()
