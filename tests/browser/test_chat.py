"""Chat in a real browser: word by word, a refresh mid-reply, Stop, and an injected reset.

The console runs in a threaded server of its own on a file database (WAL), because replies are
read and saved by background threads that the shared in-memory test database cannot serve.
"""

import time
from collections.abc import Callable

import pytest
from playwright.sync_api import Page, expect

from rivya_dashboard.chat.models import ChatTurn
from rivya_dashboard.sandbox.faults import set_global_faults
from rivya_dashboard.sandbox.models import ChatMessage, SandboxSettings
from tests.browser.conftest import DESKTOP, PHONE, SCREENSHOTS, shoot_without_caret
from tests.views.test_chat import wait_for_quiet

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

LAST_WORDS = "without an account."


def token_delay(ms: int) -> None:
    SandboxSettings.objects.filter(pk=SandboxSettings.load().pk).update(token_delay_ms=ms)


def send(page: Page, message: str) -> None:
    """Send with the keyboard and wait until the new turn is on the page."""
    turns = page.locator("[data-turn]")
    before = turns.count()
    box = page.get_by_label("Message")
    box.fill(message)
    box.press("Control+Enter")
    expect(turns).to_have_count(before + 1)


def last_reply(page: Page):
    return page.locator("[data-turn]").last.locator(".reply-body")


def wait_for_text(page: Page, condition: Callable[[str], bool], timeout: float = 5) -> str:
    deadline = time.monotonic() + timeout
    while True:
        text = last_reply(page).inner_text()
        if condition(text):
            return text
        assert time.monotonic() < deadline, f"reply never matched; it reads {text!r}"
        time.sleep(0.02)


def test_a_reply_streams_survives_a_refresh_stops_and_shows_a_reset(operator_page, screenshot):
    page = operator_page
    token_delay(80)
    page.goto("/chat/")
    expect(page.get_by_label("Message")).to_be_focused()
    page.keyboard.press("?")
    expect(page.get_by_role("dialog", name="Keyboard shortcuts")).to_be_visible()
    page.keyboard.press("Escape")
    expect(page.get_by_role("dialog", name="Keyboard shortcuts")).to_be_hidden()
    shoot_without_caret(page, screenshot, "chat-new")
    send(page, "Write a concise launch plan")

    seen = set()
    deadline = time.monotonic() + 5
    while len(seen) < 4:
        seen.add(len(last_reply(page).inner_text()))
        assert time.monotonic() < deadline, "the reply did not grow word by word"
        time.sleep(0.03)
    so_far = last_reply(page).inner_text()
    assert LAST_WORDS not in so_far

    page.reload()
    expect(page.locator("[data-turn]").last).to_have_attribute("data-status", "done", timeout=10000)
    text = last_reply(page).inner_text()
    assert text.startswith(so_far.strip()[:20]), (text, so_far)
    assert text.rstrip().endswith(LAST_WORDS), text
    expect(page.get_by_text("tokens", exact=False).first).to_be_visible()
    shoot_without_caret(page, screenshot, "chat-reply")

    token_delay(150)
    send(page, "Now stop me halfway")
    partial = wait_for_text(page, lambda text: len(text.split()) >= 6)
    page.keyboard.press("Escape")
    stopped_at = time.monotonic()
    expect(page.get_by_text("Stopped. The reply so far is kept.")).to_be_visible()
    assert time.monotonic() - stopped_at < 1
    kept = last_reply(page).inner_text()
    assert kept.startswith(partial.strip()[:20]) and LAST_WORDS not in kept
    wait_for_quiet()
    upstream = ChatMessage.objects.filter(role="assistant").order_by("-pk").first()
    assert LAST_WORDS not in upstream.content  # the sandbox saw its connection close mid-reply
    final = upstream.credits["final"]
    charged = f"3 reserved → {final} credit{'' if final == 1 else 's'}"
    expect(page.locator("[data-turn]").last.get_by_text(charged)).to_be_visible(timeout=5000)
    shoot_without_caret(page, screenshot, "chat-stopped")

    token_delay(20)
    set_global_faults({"reset-after-delta": True})
    send(page, "Break the connection")
    failure = page.locator("[data-turn]").last.locator(".notice-bad")
    expect(failure).to_be_visible(timeout=5000)
    assert last_reply(page).inner_text().startswith("This is the")
    shoot_without_caret(page, screenshot, "chat-error")


def test_thoughts_arrive_folded_above_the_reply(operator_page):
    page = operator_page
    token_delay(40)
    page.goto("/chat/")
    page.get_by_label("Model").select_option("claude-sonnet-4-6-chat")
    page.get_by_label("Show thoughts").check()
    send(page, "Think it through first")

    turn = page.locator("[data-turn]").last
    thoughts = turn.locator("details.thinking")
    expect(thoughts.locator("summary")).to_be_visible()
    expect(thoughts.locator("[data-thinking]")).to_be_hidden()
    expect(turn).to_have_attribute("data-status", "done", timeout=10000)
    expect(thoughts.locator("[data-thinking]")).to_be_hidden()
    thoughts.locator("summary").click()
    expect(thoughts.locator("[data-thinking]")).to_have_text("Planning a short answer.")


def status_of(page: Page):
    return page.locator("[data-turn]").last.locator(".turn-stats .badge")


def test_the_status_moves_from_waiting_to_replying_to_its_end(operator_page):
    page = operator_page
    token_delay(400)
    page.goto("/chat/")
    send(page, "Show me every status")
    expect(status_of(page)).to_have_text("Waiting for Rivya")
    expect(status_of(page)).to_have_text("Replying", timeout=3000)
    token_delay(20)
    expect(status_of(page)).to_have_text("Done", timeout=15000)

    token_delay(300)
    send(page, "Stop me")
    expect(status_of(page)).to_have_text("Replying", timeout=3000)
    page.keyboard.press("Escape")
    expect(status_of(page)).to_have_text("Stopped")
    stopped = page.locator("[data-turn]").last
    expect(stopped.get_by_role("button", name="Copy")).to_be_visible()
    expect(stopped.get_by_role("button", name="Regenerate")).to_be_visible()
    wait_for_quiet()

    token_delay(20)
    set_global_faults({"reset-after-delta": True})
    stopped.get_by_role("button", name="Regenerate").click()
    expect(page.locator("[data-turn]")).to_have_count(2)
    expect(status_of(page)).to_have_text("Failed", timeout=5000)
    expect(page.locator("[data-turn]").last.locator("[data-regenerated]")).to_be_visible()


def test_enter_sends_and_shift_enter_starts_a_new_line(operator_page):
    page = operator_page
    page.goto("/chat/")
    box = page.get_by_label("Message")
    box.type("first line")
    box.press("Shift+Enter")
    box.type("second line")
    expect(box).to_have_value("first line\nsecond line")
    # Enter that ends an input method's composition only commits the word.
    page.evaluate(
        """() => document.querySelector("[data-composer-input]").dispatchEvent(new KeyboardEvent(
            "keydown", {key: "Enter", isComposing: true, bubbles: true, cancelable: true}))"""
    )
    expect(page.locator("[data-turn]")).to_have_count(0)
    box.press("Enter")

    turn = page.locator("[data-turn]")
    expect(turn).to_have_count(1)
    assert turn.locator(".msg-user .msg-body").inner_text() == "first line\nsecond line"
    expect(turn).to_have_attribute("data-status", "done", timeout=10000)
    send(page, "Control+Enter still sends")


def test_only_the_conversation_scrolls_and_phones_get_a_chat_drawer(operator_page):
    page = operator_page
    page.goto("/chat/")
    send(page, "Start a long chat")
    expect(page.locator("[data-turn]").last).to_have_attribute("data-status", "done", timeout=10000)
    turn = ChatTurn.objects.get()
    for index in range(12):
        ChatTurn.objects.create(
            session=turn.session, created_by=turn.created_by, model=turn.model,
            message=f"Question {index}", reply=turn.reply, status=ChatTurn.Status.DONE,
        )  # fmt: skip
    for viewport in (DESKTOP, PHONE):
        page.set_viewport_size(viewport)
        page.goto(f"/chat/{turn.session_id}/")
        sizes = page.evaluate(LAYOUT)
        assert sizes["page"] <= sizes["window"], sizes
        assert sizes["conversation"] > sizes["conversationBox"], sizes
        assert sizes["scrolledToEnd"], sizes
        assert sizes["window"] - sizes["composerBottom"] < 24, sizes
        page.locator("#conversation").evaluate("box => box.scrollTo(0, 0)")
        page.mouse.wheel(0, 2000)
        assert page.evaluate("window.scrollY") == 0
    # A phone: the chat list waits in a drawer behind the Chats button.
    sessions = page.get_by_role("navigation", name="Chats", exact=True)
    expect(sessions).to_be_hidden()
    page.get_by_role("button", name="Chats").click()
    expect(sessions).to_be_visible()
    expect(page.get_by_role("button", name="Chats")).to_have_attribute("aria-expanded", "true")
    page.screenshot(path=SCREENSHOTS / "chat-drawer-phone.png")
    page.keyboard.press("Escape")
    expect(sessions).to_be_hidden()
    page.set_viewport_size(DESKTOP)
    new_chat = page.locator(".chat-new-button")
    expect(new_chat).to_be_visible()
    header = page.locator(".topbar").bounding_box()
    assert new_chat.bounding_box()["y"] >= header["y"] + header["height"]


LAYOUT = """() => {
  const box = document.getElementById("conversation");
  const composer = document.getElementById("composer").getBoundingClientRect();
  return {
    page: document.documentElement.scrollHeight, window: window.innerHeight,
    conversation: box.scrollHeight, conversationBox: box.clientHeight,
    scrolledToEnd: box.scrollTop + box.clientHeight >= box.scrollHeight - 2,
    composerBottom: composer.bottom,
  };
}"""


def first_reply_done(page: Page) -> None:
    page.goto("/chat/")
    send(page, "Open the chat")
    expect(page.locator("[data-turn]").last).to_have_attribute("data-status", "done")


def test_a_message_and_its_whole_reply_take_one_request(operator_page):
    page = operator_page
    token_delay(20)
    first_reply_done(page)
    asked: list[str] = []
    page.on("request", lambda request: asked.append(request.url))

    send(page, "One request, please")

    turn = page.locator("[data-turn]").last
    expect(turn).to_have_attribute("data-status", "done")
    assert last_reply(page).inner_text().rstrip().endswith(LAST_WORDS)
    assert [url.split("/chat/", 1)[1] for url in asked if "/chat/" in url] == [
        f"{ChatTurn.objects.last().session_id}/send"
    ]
    expect(page.get_by_label("Message")).to_have_value("")
    expect(page.get_by_role("button", name="Send")).to_be_enabled()


def test_a_send_whose_response_breaks_off_resumes_after_the_last_word_shown(operator_page):
    page = operator_page
    token_delay(20)
    first_reply_done(page)
    kept = 3

    def break_off(route) -> None:
        response = route.fetch()
        blocks = response.body().split(b"\n\n")
        # The retry hint, the sent turn, then the first few words only.
        route.fulfill(response=response, body=b"\n\n".join(blocks[: 2 + kept]) + b"\n\n")

    page.route("**/send", break_off)
    resumed: list[str] = []
    page.on("request", lambda request: "/stream" in request.url and resumed.append(request.url))

    send(page, "Break off early")

    expect(page.locator("[data-turn]").last).to_have_attribute("data-status", "done")
    assert len(resumed) == 1 and resumed[0].endswith(f"?after={kept}")
    turn = ChatTurn.objects.get(message="Break off early")
    assert last_reply(page).inner_text().strip() == turn.reply.strip()
