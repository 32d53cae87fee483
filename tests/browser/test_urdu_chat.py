"""Chat in Urdu in a real browser: a reply streams, the stats read in Urdu, Stop keeps the reply.

Its own module, like tests/browser/test_chat.py: the chat fixtures put the test database in a
file, which the other Urdu flows (on the shared live server) must not inherit.
"""

from collections.abc import Callable

import pytest
from playwright.sync_api import Page, expect

from rivya_dashboard.accounts.models import User
from rivya_dashboard.sandbox.models import SandboxSettings
from tests.browser.test_chat import console_url, operator_page  # noqa: F401
from tests.browser.test_urdu import capture  # noqa: F401
from tests.views.test_chat import replies_in_threads  # noqa: F401

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def capture_chat(page: Page, shoot: Callable[[Page, str], None], name: str) -> None:
    """As tests/browser/test_chat.py does: no focused caret for Playwright to hide with an inline
    style, and no empty style attributes left behind for htmx to copy (both refused by the CSP).
    """
    page.evaluate("document.activeElement && document.activeElement.blur()")
    shoot(page, name)
    page.evaluate("document.querySelectorAll('[style]').forEach(e => e.removeAttribute('style'))")


def test_an_urdu_member_chats_and_stops_a_reply(operator_page, capture):  # noqa: F811
    User.objects.filter(username="opal").update(language="ur")
    page = operator_page
    SandboxSettings.objects.filter(pk=SandboxSettings.load().pk).update(token_delay_ms=40)
    page.goto("/chat/")
    expect(page.locator("html")).to_have_attribute("dir", "rtl")
    box = page.get_by_label("پیغام")
    box.fill("ایک مختصر لانچ پلان لکھیں")
    box.press("Control+Enter")
    turn = page.locator("[data-turn]").last
    expect(turn).to_have_attribute("data-status", "done", timeout=10000)
    expect(turn.locator(".msg-body")).to_have_attribute("dir", "auto")
    expect(turn.get_by_title("ٹوکن اندر / باہر")).to_contain_text("باہر ٹوکن")
    capture_chat(page, capture, "chat-reply")

    SandboxSettings.objects.filter(pk=SandboxSettings.load().pk).update(token_delay_ms=150)
    box.fill("آدھے میں روک دیں")
    box.press("Control+Enter")
    expect(page.locator("[data-turn]")).to_have_count(2)
    expect(page.locator("[data-turn]").last).to_have_attribute("data-status", "streaming")
    page.locator("#composer").get_by_role("button", name="روکیں").click()
    expect(page.get_by_text("اب تک کا جواب محفوظ ہے")).to_be_visible()
    capture_chat(page, capture, "chat-stopped")
