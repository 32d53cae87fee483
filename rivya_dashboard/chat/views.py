"""The chat page: sessions, the conversation, the composer, and each reply's event stream."""

import json
from collections.abc import Iterator

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from rivya_dashboard import metrics, visibility
from rivya_dashboard.accounts.models import Role
from rivya_dashboard.accounts.roles import role_required
from rivya_dashboard.chat import export, remote
from rivya_dashboard.chat.forms import NewChatForm, TurnForm, chat_models
from rivya_dashboard.chat.models import ChatSession, ChatTurn, new_idempotency_key
from rivya_dashboard.chat.relay import LIVE, LiveTurn, tail, wait_written
from rivya_dashboard.chat.turns import (
    TurnRefused,
    catalogue_model,
    do_attach,
    do_await_start,
    do_regenerate,
    do_request_stop,
    do_send_turn,
    do_start_chat,
)
from rivya_dashboard.rivya.errors import RivyaError
from rivya_dashboard.vault.grants import GrantRefused, usable_keys
from rivya_dashboard.vault.models import Action

PAGE = "chat/chat.html"


def seen_session(request: HttpRequest, pk: int) -> ChatSession:
    sessions = visibility.visible_chat_sessions(request.user).select_related("api_key")
    return get_object_or_404(sessions, pk=pk)


def own_session(request: HttpRequest, pk: int) -> ChatSession:
    """A chat the member may continue: one they started themselves."""
    sessions = visibility.own_chat_sessions(request.user).select_related("api_key")
    return get_object_or_404(sessions, pk=pk)


def seen_turn(request: HttpRequest, pk: int) -> ChatTurn:
    turns = visibility.visible_chat_turns(request.user).select_related("session__api_key")
    return get_object_or_404(turns, pk=pk)


def own_turn(request: HttpRequest, pk: int) -> ChatTurn:
    turns = visibility.own_chat_turns(request.user).select_related("session__api_key")
    return get_object_or_404(turns, pk=pk)


def may_write(request: HttpRequest, session: ChatSession | None) -> bool:
    """Starting a chat takes the operator role; continuing one, having started it. Everyone
    else who sees a chat reads it."""
    starts = request.user.has_role(Role.OPERATOR)
    return starts and (session is None or session.created_by_id == request.user.pk)


def turn_form(model_id: str, data: dict | None = None, files: dict | None = None) -> TurnForm:
    return TurnForm(data, files, model=catalogue_model(model_id))


def new_chat_form(
    request: HttpRequest, data: dict | None = None, files: dict | None = None
) -> NewChatForm:
    keys = usable_keys(request.user, Action.CHAT)
    initial = {name: request.GET.get(name) for name in ("key", "model", "message")}
    return NewChatForm(data, files, keys=keys, models=chat_models(), initial=initial)


def page_context(request: HttpRequest, session: ChatSession | None, form: TurnForm) -> dict:
    return {
        "sessions": visibility.visible_chat_sessions(request.user).select_related("created_by")[
            :100
        ],
        "session": session,
        "can_chat": request.user.has_role(Role.OPERATOR),
        "can_write": may_write(request, session),
        "turns": list(session.visible_turns()) if session else [],
        "form": form,
        "keys": usable_keys(request.user, Action.CHAT),
    }


def composer(request: HttpRequest, context: dict, refused: TurnRefused | None) -> HttpResponse:
    """The composer again, with the error and Rivya's request id in the input area."""
    if refused is not None:
        context["form"].add_error(None, refused.message)
        context["request_id"] = refused.request_id
    if request.htmx:
        response = render(request, f"{PAGE}#composer", context)
        response["HX-Retarget"] = "#composer"
        response["HX-Reswap"] = "outerHTML"
        return response
    return render(request, PAGE, context, status=400)


@role_required(Role.VIEWER)
@require_GET
def chat(request: HttpRequest) -> HttpResponse:
    context = page_context(request, None, new_chat_form(request))
    if request.htmx and request.htmx.target == "composer":
        return render(request, f"{PAGE}#composer", context)
    return render(request, PAGE, context)


@role_required(Role.VIEWER)
@require_GET
def chat_session(request: HttpRequest, pk: int) -> HttpResponse:
    session = seen_session(request, pk)
    return render(request, PAGE, page_context(request, session, turn_form(session.model)))


@role_required(Role.OPERATOR)
@require_POST
def chat_new(request: HttpRequest) -> HttpResponse:
    form = new_chat_form(request, request.POST, request.FILES)
    refused = None
    if form.is_valid():
        data = form.cleaned_data
        try:
            attachments = do_attach(request.user, data["key"], data.get("image"))
            turn = do_start_chat(
                request.user,
                data["key"],
                form.model,
                data["message"],
                {**form.options(), "attachments": attachments},
                data["idempotency_key"],
            )
            if not request.htmx:
                do_await_start(turn)
        except TurnRefused as error:
            refused = error
        else:
            url = reverse("chat-session", args=[turn.session_id])
            if request.htmx:
                return HttpResponse(status=204, headers={"HX-Redirect": url})
            return redirect(url)
    return composer(request, page_context(request, None, form), refused)


@role_required(Role.OPERATOR)
@require_POST
def chat_send(request: HttpRequest, pk: int) -> HttpResponse:
    session = own_session(request, pk)
    form = turn_form(session.model, request.POST, request.FILES)
    refused = None
    if form.is_valid():
        data = form.cleaned_data
        try:
            attachments = do_attach(request.user, session.api_key, data.get("image"))
            options = {**form.options(), "attachments": attachments}
            turn = do_send_turn(
                request.user, session, form.model, data["message"], options, data["idempotency_key"]
            )
            if not request.htmx:
                do_await_start(turn)
        except TurnRefused as error:
            refused = error
        else:
            return turn_sent(request, session, turn)
    return composer(request, page_context(request, session, form), refused)


def turn_sent(
    request: HttpRequest, session: ChatSession, turn: ChatTurn, replaced: ChatTurn | None = None
) -> HttpResponse:
    if not request.htmx:
        return redirect(f"{reverse('chat-session', args=[session.pk])}#turn-{turn.pk}")
    # Small on purpose: this renders while the reader waits for the first words, and both
    # threads need the GIL.
    context = {"turn": turn, "session": session, "replaced": replaced}
    context["next_key"] = new_idempotency_key()
    if not wants_stream(request):
        return render(request, f"{PAGE}#sent", context)
    # chat.js reads the reply on this same response: the sent turn first, then its events, with
    # no second request (and its round trip, session and member reads) before the first words.
    sent = {"html": render_to_string(f"{PAGE}#sent", context, request=request)}
    sent["turn"] = f"turn-{turn.pk}"  # the element the reply's events go to
    return event_stream(request, turn, 0, opening=event_frame("sent", sent))


def wants_stream(request: HttpRequest) -> bool:
    return "text/event-stream" in request.headers.get("Accept", "")


@role_required(Role.VIEWER)
@require_GET
def turn_detail(request: HttpRequest, pk: int) -> HttpResponse:
    turn = seen_turn(request, pk)
    if not request.htmx:
        return redirect(f"{reverse('chat-session', args=[turn.session_id])}#turn-{turn.pk}")
    return render(request, f"{PAGE}#turn", {"turn": turn, "session": turn.session})


@role_required(Role.VIEWER)
@require_GET
def turn_stream(request: HttpRequest, pk: int) -> StreamingHttpResponse:
    return event_stream(request, seen_turn(request, pk), resume_point(request))


def event_stream(
    request: HttpRequest, turn: ChatTurn, after: int, opening: bytes = b""
) -> StreamingHttpResponse:
    stream = metrics.counted_stream(sse(request, turn, after, opening))
    response = StreamingHttpResponse(stream, content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    # A buffering proxy would hold the words back until the reply ends.
    response["X-Accel-Buffering"] = "no"
    return response


def resume_point(request: HttpRequest) -> int:
    """EventSource sends Last-Event-ID when it reconnects; the page sends ?after= at first."""
    values = (request.headers.get("Last-Event-ID"), request.GET.get("after"))
    # ASCII only: str.isdigit accepts "²", which int() refuses; nine digits fit the seq column.
    valid = [v for v in values if v and v.isascii() and v.isdigit() and len(v) <= 9]
    return max((int(value) for value in valid), default=0)


def event_frame(kind: str, payload: dict, seq: int | None = None) -> bytes:
    data = json.dumps(payload, ensure_ascii=False)
    event_id = "" if seq is None else f"id: {seq}\n"
    return f"{event_id}event: {kind}\ndata: {data}\n\n".encode()


def sse(request: HttpRequest, turn: ChatTurn, after: int, opening: bytes) -> Iterator[bytes]:
    live = LIVE.get(turn.pk)
    yield b"retry: 1000\n\n" + opening
    for frame in tail(turn.pk, after):
        if frame is None:
            yield b": ping\n\n"
            continue
        payload = {"text": frame.text}
        if frame.is_terminal:
            payload.update(terminal_payload(request, turn, live))
        yield event_frame(frame.kind, payload, frame.seq)
    wait_written(live)


def terminal_payload(request: HttpRequest, turn: ChatTurn, live: LiveTurn | None) -> dict:
    """The finished turn as the page shows it. A reply read in this process (`live`) is shown
    from the reader's own fields the moment it ends; its saving follows within a saver tick."""
    if live is None:
        turn.refresh_from_db()
    else:
        for name, value in live.known().items():
            setattr(turn, name, value)
    if turn.status == ChatTurn.Status.REJECTED:
        return {"rejected": True, "request_id": turn.request_id, "message": turn.message}
    context = {"turn": turn, "session": turn.session, "is_last": True}
    return {"html": render_to_string(f"{PAGE}#turn", context, request=request)}


@role_required(Role.OPERATOR)
@require_POST
def turn_stop(request: HttpRequest, pk: int) -> HttpResponse:
    turn = own_turn(request, pk)
    do_request_stop(turn)
    if request.htmx:
        return HttpResponse(status=204)
    return redirect(f"{reverse('chat-session', args=[turn.session_id])}#turn-{turn.pk}")


@role_required(Role.OPERATOR)
@require_POST
def turn_regenerate(request: HttpRequest, pk: int) -> HttpResponse:
    turn = own_turn(request, pk)
    try:
        fresh = do_regenerate(request.user, turn)
    except TurnRefused as refused:
        if request.htmx:
            form = turn_form(turn.model)
            return composer(request, page_context(request, turn.session, form), refused)
        messages.error(request, refused.message)
        return redirect("chat-session", turn.session_id)
    return turn_sent(request, turn.session, fresh, replaced=turn)


@role_required(Role.VIEWER)
@require_GET
def chat_export(request: HttpRequest, pk: int, fmt: str) -> HttpResponse:
    session = seen_session(request, pk)
    if fmt == "md":
        body, content_type = export.session_markdown(session), "text/markdown; charset=utf-8"
    elif fmt == "json":
        body, content_type = export.session_json(session), "application/json"
    else:
        raise Http404
    response = HttpResponse(body, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="chat-{session.pk}.{fmt}"'
    return response


@role_required(Role.OPERATOR)
@require_GET
def remote_list(request: HttpRequest) -> HttpResponse:
    keys = {str(key.pk): key for key in usable_keys(request.user, Action.CHAT)}
    key = keys.get(request.GET.get("key", "")) or next(iter(keys.values()), None)
    context = {"remote_key": key, "keys": list(keys.values()), "remote": [], "remote_error": None}
    if key is not None:
        try:
            context["remote"] = remote.remote_sessions(request.user, key)
        except (RivyaError, GrantRefused) as error:
            context["remote_error"] = error
    if request.htmx:
        return render(request, f"{PAGE}#remote", context)
    return render(request, PAGE, {**page_context(request, None, new_chat_form(request)), **context})


@role_required(Role.OPERATOR)
@require_POST
def remote_continue(request: HttpRequest) -> HttpResponse:
    keys = {str(key.pk): key for key in usable_keys(request.user, Action.CHAT)}
    key = keys.get(request.POST.get("key", ""))
    remote_id = request.POST.get("session_id", "").strip()
    if key is None or not remote_id:
        messages.error(request, _("Pick a key and a Rivya session to continue."))
        return redirect("chat")
    try:
        session = remote.do_continue_remote(request.user, key, remote_id)
    except (RivyaError, GrantRefused) as error:
        messages.error(request, str(error))
        return redirect("chat")
    return redirect("chat-session", session.pk)
