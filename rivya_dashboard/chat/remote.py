"""Chat sessions that live on Rivya (`GET /chat/sessions`), and continuing one in the console."""

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from rivya_dashboard.accounts.models import User
from rivya_dashboard.chat.models import ChatSession, ChatTurn
from rivya_dashboard.chat.turns import title_from
from rivya_dashboard.rivya.errors import RivyaError
from rivya_dashboard.vault import ledger
from rivya_dashboard.vault.grants import GrantRefused
from rivya_dashboard.vault.models import Action, ApiKey

REMOTE_PAGE_SIZE = 20
# The largest count a PositiveIntegerField holds on every database.
LARGEST_COUNT = 2**31 - 1


def remote_sessions(user: User, key: ApiKey) -> list[dict]:
    client = key.client()
    with ledger.recording(user, key, "chat.sessions.list", action=Action.CHAT, client=client):
        page = client.list_chat_sessions(limit=REMOTE_PAGE_SIZE)
    data = page.get("data") if isinstance(page.get("data"), list) else []
    found = [entry for entry in data if isinstance(entry, dict) and entry.get("id")]
    taken = others_chats(user, [str(entry["id"]) for entry in found])
    return [entry for entry in found if str(entry["id"]) not in taken]


def others_chats(user: User, remote_ids: list[str]) -> set[str]:
    """Rivya sessions behind other members' console chats: the team shares the key, but a
    member's chats are theirs alone, here as on the chat page."""
    chats = ChatSession.objects.filter(remote_id__in=remote_ids).exclude(created_by=user)
    return set(chats.values_list("remote_id", flat=True))


def do_continue_remote(user: User, key: ApiKey, remote_id: str) -> ChatSession:
    """Bring a Rivya session into the console with its history, so the next turn continues it."""
    existing = ChatSession.objects.filter(created_by=user, remote_id=remote_id).first()
    if existing is not None:
        return existing
    if others_chats(user, [remote_id]):
        raise GrantRefused(_("This session is another member's chat; only they can continue it."))
    client = key.client()
    with ledger.recording(user, key, "chat.sessions.get", action=Action.CHAT, client=client):
        detail = client.get_chat_session(remote_id)
    messages = [m for m in detail.get("messages") or [] if isinstance(m, dict)]
    first_user = next((m for m in messages if m.get("role") == "user"), {})
    with transaction.atomic():
        session = ChatSession.objects.create(
            created_by=user,
            api_key=key,
            key_label=key.label,
            model=str(detail.get("model") or "")[:100],
            remote_id=str(detail.get("id") or remote_id)[:64],
            title=str(detail.get("title") or title_from(str(first_user.get("content") or "")))[:120]
            or remote_id,
        )
        turns = history_turns(session, user, messages, client.last_request_id)
        ChatTurn.objects.bulk_create(turns)
    return session


def count_at(value: object, field: str, request_id: str | None) -> int | None:
    """A count from Rivya's answer, or an error naming the field: a bad number must not be
    stored half-way or end in a server error."""
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= LARGEST_COUNT:
        return value
    message = _(
        "Rivya's answer has %(value)s in %(field)s, which is not a count; nothing was "
        "imported. Try again later, or send the request id to Rivya support."
    ) % {"value": repr(value)[:40], "field": field}
    raise RivyaError(message, request_id=request_id)


def history_turns(
    session: ChatSession, user: User, messages: list[dict], request_id: str | None
) -> list[ChatTurn]:
    turns: list[ChatTurn] = []
    for index, message in enumerate(messages):
        if message.get("role") == "user":
            turns.append(
                ChatTurn(
                    session=session,
                    created_by=user,
                    message=str(message.get("content") or ""),
                    model=session.model,
                    status=ChatTurn.Status.DONE,
                    finished_at=timezone.now(),
                )
            )
        elif message.get("role") == "assistant" and turns:
            usage = message.get("usage") if isinstance(message.get("usage"), dict) else {}
            credits = message.get("credits") if isinstance(message.get("credits"), dict) else {}
            turn = turns[-1]
            turn.reply = str(message.get("content") or "")
            turn.message_id = str(message.get("id") or "")[:64]
            at = f"messages[{index}]"
            turn.input_tokens = count_at(
                usage.get("input_tokens"), f"{at}.usage.input_tokens", request_id
            )
            turn.output_tokens = count_at(
                usage.get("output_tokens"), f"{at}.usage.output_tokens", request_id
            )
            turn.credits_reserved = count_at(
                credits.get("reserved"), f"{at}.credits.reserved", request_id
            )
            turn.credits_final = count_at(credits.get("final"), f"{at}.credits.final", request_id)
    return turns
