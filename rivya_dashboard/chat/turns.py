"""Chat rules: start a chat, send a turn (saved before anything is sent), Stop, regenerate."""

import math

from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.db.models import Q, Subquery
from django.utils import timezone
from django.utils.translation import gettext as _

from rivya_dashboard.accounts.models import User
from rivya_dashboard.chat.models import ChatSession, ChatTurn, new_idempotency_key
from rivya_dashboard.chat.reader import start_reading
from rivya_dashboard.chat.relay import LIVE, SAVE_WAIT_SECONDS
from rivya_dashboard.console.files import UploadTooLarge, do_upload
from rivya_dashboard.console.models import CatalogueModel
from rivya_dashboard.rivya.errors import RivyaError
from rivya_dashboard.vault import ledger
from rivya_dashboard.vault.grants import GrantRefused
from rivya_dashboard.vault.models import Action, ApiKey

# How long a POST without JavaScript waits for Rivya to accept the turn; a slower start simply
# shows as waiting on the page.
START_WAIT_SECONDS = 8.0
CALL_WAIT_SECONDS = 0.25
TITLE_LENGTH = 80


class TurnRefused(Exception):
    """The turn was not sent; the message says what to do, with Rivya's request id if it has one."""

    def __init__(self, message: str, request_id: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.request_id = request_id


def title_from(message: str) -> str:
    first_line = message.strip().splitlines()[0] if message.strip() else ""
    if len(first_line) <= TITLE_LENGTH:
        return first_line
    return first_line[: TITLE_LENGTH - 1].rstrip() + "…"


def catalogue_model(model_id: str) -> CatalogueModel | None:
    return CatalogueModel.objects.filter(model_id=model_id).first()


def reserve_for(model: CatalogueModel | None) -> int | None:
    """Chat reserves the model's base credits before the call (contract §10.4)."""
    return math.ceil(model.base_credits) if model else None


def do_attach(user: User, key: ApiKey | None, image: UploadedFile | None) -> list[dict]:
    """An image goes to Rivya through the Files API first; the turn then names it by file id."""
    if image is None:
        return []
    if key is None:
        raise TurnRefused(_("The key of this chat was deleted. Start a new chat with another key."))
    try:
        # Not tied to the chat model: the Files API's per-model rules are for generations.
        uploaded = do_upload(user, key, image, kind="image")
    except (GrantRefused, UploadTooLarge) as refused:
        raise TurnRefused(str(refused)) from refused
    except RivyaError as error:
        raise TurnRefused(error.message, error.request_id or "") from error
    return [{"file_id": uploaded.remote_id, "name": uploaded.name}]


def do_start_chat(
    user: User,
    key: ApiKey,
    model: CatalogueModel,
    message: str,
    options: dict,
    idempotency_key: str,
) -> ChatTurn:
    """`model` is the catalogue entry the new-chat form picked (its price comes with it)."""
    existing = ChatTurn.objects.filter(idempotency_key=idempotency_key, created_by=user).first()
    if existing is not None:
        return existing
    session = ChatSession.objects.create(
        created_by=user,
        api_key=key,
        key_label=key.label,
        model=model.model_id,
        title=title_from(message),
    )
    try:
        return do_send_turn(user, session, model, message, options, idempotency_key)
    except TurnRefused:
        # A chat whose first message was refused holds nothing worth keeping; the ledger has it.
        session.delete()
        raise


def is_over(turn: ChatTurn) -> bool:
    """Whether a turn has ended, counting an end this process is saving at this moment (its
    stream has shown the end already, so the next message may follow at once)."""
    if turn.is_finished:
        return True
    live = LIVE.get(turn.pk)
    if live is not None:
        return live.is_closing and live.saved.wait(SAVE_WAIT_SECONDS)
    turn.refresh_from_db(fields=["status"])
    return turn.is_finished


def sent_before(
    session: ChatSession, idempotency_key: str
) -> tuple[ChatTurn | None, ChatTurn | None]:
    """The turn already sent with this idempotency key, if any, and the chat's last turn: what
    a send checks first, read in one query."""
    last_pk = session.visible_turns().order_by("-pk").values("pk")[:1]
    found = ChatTurn.objects.filter(Q(idempotency_key=idempotency_key) | Q(pk=Subquery(last_pk)))
    existing = last = None
    for turn in found.order_by("pk"):
        if turn.idempotency_key == idempotency_key:
            existing = turn
        last = turn
    return existing, last


def do_send_turn(
    user: User,
    session: ChatSession,
    model: CatalogueModel | None,
    message: str,
    options: dict,
    idempotency_key: str,
) -> ChatTurn:
    """`model` is the chat's model from the catalogue, for its price (None if it left it)."""
    existing, last = sent_before(session, idempotency_key)
    if existing is not None and existing.created_by_id == user.pk:
        return existing  # a double click or a retried POST sends the message once
    if existing is not None:
        # The key is a hidden field, unique across members; a reused one is never sent.
        raise TurnRefused(_("This form was already used; reload the page and send again."))
    if last is not None and not is_over(last):
        raise TurnRefused(_("Wait for the reply to finish, or stop it, before sending another."))
    if session.api_key is None:
        raise TurnRefused(_("The key of this chat was deleted. Start a new chat with another key."))
    reserve = reserve_for(model)
    try:
        # One write before the call, here: the reader thread then calls Rivya at once, with no
        # database connection of its own to open and no write lock to wait for first.
        with transaction.atomic():
            entry = ledger.open_entry(
                user,
                session.api_key,
                "chat.stream",
                action=Action.CHAT,
                credits=reserve,
                model=session.model,
                idempotency_key=idempotency_key,
            )
            turn = ChatTurn.objects.create(
                session=session,
                created_by=user,
                message=message,
                model=session.model,
                idempotency_key=idempotency_key,
                **options,
            )
    except GrantRefused as refused:
        raise TurnRefused(str(refused)) from refused
    turn.is_new = True
    live = start_reading(turn, reserve, entry)
    # Let the reader reach Rivya before this thread renders the page: both need the GIL, and
    # the upstream call is what the first word waits for.
    live.calling.wait(CALL_WAIT_SECONDS)
    # The chat moves to the top of the list; nothing the call needs, so it waits until now.
    ChatSession.objects.filter(pk=session.pk).update(updated_at=timezone.now())
    return turn


def do_await_start(turn: ChatTurn) -> None:
    """A page without JavaScript cannot follow the stream: it waits until Rivya accepts the turn,
    so a refusal (auth, validation, credits, rate limit) goes back to the form. Pages with
    JavaScript learn of a refusal from the stream instead, and save this wait."""
    live = LIVE.get(turn.pk)
    if live is not None:
        live.started.wait(START_WAIT_SECONDS)
        if live.is_closing:
            live.saved.wait(START_WAIT_SECONDS)
    turn.refresh_from_db()
    if turn.status != ChatTurn.Status.REJECTED:
        return
    if not turn.session.visible_turns().exists():
        turn.session.delete()
    raise TurnRefused(turn.error_message, turn.request_id)


def do_regenerate(user: User, turn: ChatTurn) -> ChatTurn:
    session = turn.session
    if session.last_turn() != turn:
        raise TurnRefused(_("Only the last reply can be regenerated."))
    options = {
        "enable_web_search": turn.enable_web_search,
        "reasoning_effort": turn.reasoning_effort,
        "enable_thoughts": turn.enable_thoughts,
        "replaces": turn,
    }
    ChatTurn.objects.filter(pk=turn.pk).update(superseded=True)
    try:
        model = catalogue_model(session.model)
        return do_send_turn(user, session, model, turn.message, options, new_idempotency_key())
    except TurnRefused:
        ChatTurn.objects.filter(pk=turn.pk).update(superseded=False)
        raise


def do_request_stop(turn: ChatTurn) -> None:
    """Stop is a column (another worker may be reading the reply) plus a direct cut when the
    reader runs in this process."""
    if turn.is_finished:
        return
    ChatTurn.objects.filter(Q(pk=turn.pk) & Q(stop_requested_at__isnull=True)).update(
        stop_requested_at=timezone.now()
    )
    live = LIVE.get(turn.pk)
    if live is not None:
        live.cut()
