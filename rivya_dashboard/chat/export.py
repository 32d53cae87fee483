"""A chat session as a Markdown transcript or a JSON document, with each reply's usage."""

import json

from django.utils.translation import gettext as _

from rivya_dashboard.chat.models import ChatSession, ChatTurn
from rivya_dashboard.console.templatetags.quantities import credits as credits_text


def turn_record(turn: ChatTurn) -> dict:
    progress = turn.progress()
    return {
        "message": turn.message,
        "reply": progress.text,
        "thinking": progress.thinking or None,
        "status": turn.status,
        "model": turn.model,
        "created_at": turn.created_at.isoformat(),
        "finished_at": turn.finished_at.isoformat() if turn.finished_at else None,
        "usage": {"input_tokens": turn.input_tokens, "output_tokens": turn.output_tokens},
        "credits": {"reserved": turn.credits_reserved, "final": turn.credits_final},
        "ttft_ms": turn.ttft_ms,
        "duration_ms": turn.duration_ms,
        "request_id": turn.request_id or None,
        "error": {"code": turn.error_code, "message": turn.error_message}
        if turn.error_message
        else None,
    }


def session_json(session: ChatSession) -> str:
    document = {
        "title": session.title,
        "model": session.model,
        "key": session.key_label,
        "session_id": session.remote_id or None,
        "created_at": session.created_at.isoformat(),
        "turns": [turn_record(turn) for turn in session.visible_turns()],
    }
    return json.dumps(document, ensure_ascii=False, indent=2)


def session_markdown(session: ChatSession) -> str:
    # Translated outside the f-strings: makemessages cannot see a gettext call inside one.
    model, key, remote = _("Model"), _("Key"), _("Rivya session")
    you, assistant, no_text = _("You"), _("Assistant"), _("(no text)")
    lines = [f"# {session.title}", "", f"- {model}: `{session.model}`"]
    lines += [f"- {key}: {session.key_label}"]
    if session.remote_id:
        lines.append(f"- {remote}: `{session.remote_id}`")
    for turn in session.visible_turns():
        lines += ["", f"## {you}", "", turn.message, "", f"## {assistant}", ""]
        lines.append(turn.progress().text or f"_{no_text}_")
        lines += ["", f"> {usage_line(turn)}"]
    return "\n".join(lines) + "\n"


def usage_line(turn: ChatTurn) -> str:
    parts = [turn.get_status_display()]
    if turn.input_tokens is not None or turn.output_tokens is not None:
        parts.append(
            _("%(input)s tokens in, %(output)s out")
            % {"input": turn.input_tokens or 0, "output": turn.output_tokens or 0}
        )
    if turn.credits_final is not None:
        parts.append(credits_text(turn.credits_final))
    if turn.request_id:
        parts.append(f"`{turn.request_id}`")
    if turn.error_message:
        parts.append(turn.error_message)
    return " · ".join(str(part) for part in parts)
