"""Chat sessions, their turns (one user message and one reply each) and the reply's events.

The events table is the source of truth for a reply in flight: the upstream reader may run in a
different worker process than the page that shows the stream, so the page tails these rows.
"""

import uuid
from dataclasses import dataclass

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.safestring import SafeString
from django.utils.translation import gettext_lazy as _

from rivya_dashboard.chat.markup import render_markdown


class ChatSession(models.Model):
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="chat_sessions"
    )
    api_key = models.ForeignKey(
        "vault.ApiKey", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Kept so the history still names the key after it is deleted.
    key_label = models.CharField(max_length=100)
    model = models.CharField(max_length=100)
    remote_id = models.CharField(max_length=64, blank=True, db_index=True)
    title = models.CharField(max_length=120)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-updated_at"]

    def __str__(self) -> str:
        return self.title

    def visible_turns(self) -> models.QuerySet["ChatTurn"]:
        return self.turns.exclude(status=ChatTurn.Status.REJECTED).filter(superseded=False)

    def last_turn(self) -> "ChatTurn | None":
        return self.visible_turns().order_by("-pk").first()


def new_idempotency_key() -> str:
    return f"console-chat-{uuid.uuid4().hex}"


class ChatTurn(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued", _("Waiting for Rivya")
        STREAMING = "streaming", _("Replying")
        DONE = "done", _("Done")
        STOPPED = "stopped", _("Stopped")
        FAILED = "failed", _("Failed")
        # Refused before any reply started (auth, validation, credits, rate limit): the error
        # goes back to the input area and the turn stays out of the conversation.
        REJECTED = "rejected", _("Not sent")

    TERMINAL = (Status.DONE, Status.STOPPED, Status.FAILED, Status.REJECTED)

    session = models.ForeignKey(ChatSession, on_delete=models.CASCADE, related_name="turns")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+"
    )
    message = models.TextField()
    attachments = models.JSONField(default=list, blank=True)
    enable_web_search = models.BooleanField(default=False)
    reasoning_effort = models.CharField(max_length=16, blank=True)
    enable_thoughts = models.BooleanField(default=False)
    idempotency_key = models.CharField(max_length=100, unique=True, default=new_idempotency_key)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    superseded = models.BooleanField(default=False)
    # A regenerated reply hides the one it replaces, unless Rivya refuses it.
    replaces = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    model = models.CharField(max_length=100)
    reply = models.TextField(blank=True)
    thinking = models.TextField(blank=True)
    completion_id = models.CharField(max_length=64, blank=True)
    message_id = models.CharField(max_length=64, blank=True)
    request_id = models.CharField(max_length=64, blank=True)
    error_code = models.CharField(max_length=64, blank=True)
    error_message = models.TextField(blank=True)
    input_tokens = models.PositiveIntegerField(null=True, blank=True)
    output_tokens = models.PositiveIntegerField(null=True, blank=True)
    credits_reserved = models.PositiveIntegerField(null=True, blank=True)
    credits_final = models.PositiveIntegerField(null=True, blank=True)
    ttft_ms = models.PositiveIntegerField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    stop_requested_at = models.DateTimeField(null=True, blank=True)
    # The reader refreshes this while it runs; a stale value means its process went away.
    alive_at = models.DateTimeField(default=timezone.now)

    # Set on a turn its send request has just saved: it has no events yet, so rendering it (while
    # its reader waits for the first words) asks no query.
    is_new = False

    class Meta:
        ordering = ["pk"]

    def __str__(self) -> str:
        return f"turn {self.pk} of session {self.session_id}"

    @property
    def is_finished(self) -> bool:
        return self.status in self.TERMINAL

    def progress(self) -> "Progress":
        """What has arrived so far, read in one query so the text and the resume point agree."""
        if self.is_finished:
            return Progress(self.reply, self.thinking, 0)
        if self.is_new:
            return Progress("", "", 0)
        reply, thinking, last = [], [], 0
        for kind, text, seq in self.events.values_list("kind", "text", "seq"):
            if kind == ChatEvent.Kind.DELTA:
                reply.append(text)
            elif kind == ChatEvent.Kind.THINKING:
                thinking.append(text)
            last = max(last, seq)
        return Progress("".join(reply), "".join(thinking), last)

    def reply_html(self) -> SafeString:
        return render_markdown(self.reply)

    @property
    def duration_seconds(self) -> float | None:
        return None if self.duration_ms is None else self.duration_ms / 1000


@dataclass(frozen=True)
class Progress:
    text: str
    thinking: str
    seq: int


class ChatEvent(models.Model):
    class Kind(models.TextChoices):
        DELTA = "delta"
        THINKING = "thinking"
        DONE = "done"
        STOPPED = "stopped"
        ERROR = "error"

    TERMINAL = (Kind.DONE, Kind.STOPPED, Kind.ERROR)

    turn = models.ForeignKey(ChatTurn, on_delete=models.CASCADE, related_name="events")
    seq = models.PositiveIntegerField()
    kind = models.CharField(max_length=16, choices=Kind.choices)
    text = models.TextField(blank=True)

    class Meta:
        ordering = ["seq"]
        constraints = [models.UniqueConstraint(fields=["turn", "seq"], name="chat_event_seq")]

    def __str__(self) -> str:
        return f"{self.kind} {self.seq} of turn {self.turn_id}"
