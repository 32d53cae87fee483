"""Every main page, as an owner with a working sandbox key and some history, checked for what
a screenshot review misses: axe-core's serious and critical findings (contrast among them) in
both themes, numbers left without bidi isolation next to Urdu words, and a navigation bar that
wraps on a laptop. Screenshots of each page land in test-output/screenshots/quality-*.png.
"""

import json
from collections.abc import Iterator

import pytest
from django.test import Client
from django.urls import reverse
from playwright.sync_api import expect

from rivya_dashboard.accounts.models import Role, User
from rivya_dashboard.console import credits, generations, models_catalog
from rivya_dashboard.console.models import CatalogueModel, Generation
from rivya_dashboard.sandbox.models import SandboxSettings
from rivya_dashboard.vault.models import ApiKey
from rivya_dashboard.webhooks import inboxes
from rivya_dashboard.webhooks.models import Inbox
from tests.browser.conftest import store_sandbox_key
from tests.browser.inline_worker import run_ready_tasks
from tests.conftest import make_member

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

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


@pytest.fixture
def owner_with_history(live_server, settings) -> Iterator[User]:
    """An owner whose sandbox key has a catalogue, a balance, a finished job and an inbox."""
    settings.RIVYA_POLL_SPEED = 1000
    settings.RIVYA_SANDBOX_RATE_LIMIT = 10_000
    SandboxSettings.load()
    SandboxSettings.objects.update(clock_speed=1000)
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
