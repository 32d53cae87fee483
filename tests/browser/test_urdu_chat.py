"""Chat in Urdu in a real browser: a reply streams, the stats read in Urdu, Stop keeps the reply.

Its own module, like tests/browser/test_chat.py: the chat fixtures put the test database in a
file, which the other Urdu flows (on the shared live server) must not inherit.
"""

import pytest
from playwright.sync_api import expect

from rivya_dashboard.accounts.models import User
from rivya_dashboard.sandbox.models import SandboxSettings
from tests.browser.conftest import shoot_without_caret
from tests.browser.test_urdu import capture  # noqa: F401

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


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
    shoot_without_caret(page, capture, "chat-reply")

    SandboxSettings.objects.filter(pk=SandboxSettings.load().pk).update(token_delay_ms=150)
    box.fill("آدھے میں روک دیں")
    box.press("Control+Enter")
    expect(page.locator("[data-turn]")).to_have_count(2)
    expect(page.locator("[data-turn]").last).to_have_attribute("data-status", "streaming")
    page.locator("#composer").get_by_role("button", name="روکیں").click()
    expect(page.get_by_text("اب تک کا جواب محفوظ ہے")).to_be_visible()
    shoot_without_caret(page, capture, "chat-stopped")
