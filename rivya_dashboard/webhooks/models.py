"""Local inboxes that receive webhooks, every request they got, and what was sent on from them."""

import json
import secrets

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from rivya_dashboard.vault import crypto

TOKEN_BYTES = 24


def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


class SecretState(models.TextChoices):
    CURRENT = "current", _("Current")
    PREVIOUS = "previous", _("Previous (rotation overlap)")
    RETIRED = "retired", _("Rotated out")


# States whose secret still verifies deliveries; retired ones are kept only for the doctor.
ACCEPTED_STATES = (SecretState.CURRENT, SecretState.PREVIOUS)


class Inbox(models.Model):
    """A receiver URL of the console, with the signing secrets it verifies deliveries with."""

    name = models.CharField(_("name"), max_length=100)
    token = models.CharField(max_length=64, unique=True, default=new_token)
    # Verified generation events update this key's tracked jobs (issue 9 item 4).
    key = models.ForeignKey(
        "vault.ApiKey", null=True, blank=True, on_delete=models.SET_NULL, related_name="inboxes"
    )
    # The remote endpoint (on `key`) that delivers here; its rotations update the secrets.
    endpoint_id = models.CharField(max_length=100, blank=True)
    # JSON list of secrets, newest first, aligned with secret_meta; encrypted like API keys.
    secrets_blob = crypto.EncryptedTextField(blank=True)
    # [{"preview": "whsec_ab…c123", "state": "current", "added_at": iso}], never the secret.
    secret_meta = models.JSONField(default=list, blank=True)
    response_status = models.PositiveSmallIntegerField(_("answer with status"), default=200)
    forward_url = models.CharField(_("forward to"), max_length=500, blank=True)
    forward_enabled = models.BooleanField(_("forward live"), default=False)
    # Whether whoever set the forward target may send to loopback (owner/admin, setting on).
    forward_allows_local = models.BooleanField(default=False)
    # Limits (webhooks/inbox_limits.py); empty means the RIVYA_INBOX_* default.
    max_requests = models.PositiveIntegerField(_("keep at most (requests)"), null=True, blank=True)
    max_megabytes = models.PositiveIntegerField(_("keep at most (MB)"), null=True, blank=True)
    retention_days = models.PositiveIntegerField(_("keep for (days)"), null=True, blank=True)
    rate_per_minute = models.PositiveIntegerField(
        _("take at most (requests a minute)"), null=True, blank=True
    )
    # What the inbox stores, kept in the transaction that stores or prunes a request.
    stored_requests = models.PositiveIntegerField(default=0)
    stored_bytes = models.PositiveBigIntegerField(default=0)
    pruned_requests = models.PositiveBigIntegerField(default=0)
    # The rate limit's fixed one-minute window (minutes since the epoch) and its admissions.
    rate_window = models.BigIntegerField(default=0)
    rate_count = models.PositiveIntegerField(default=0)
    rate_refused = models.PositiveBigIntegerField(default=0)
    rate_refused_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name", "pk"]
        verbose_name_plural = "inboxes"

    def __str__(self) -> str:
        return self.name

    def reveal_secrets(self) -> list[str]:
        if not self.secrets_blob:
            return []
        return json.loads(crypto.decrypt(self.secrets_blob, row=crypto.binding(self, "secrets")))

    def store_secrets(self, values: list[str], meta: list[dict]) -> None:
        self.secrets_blob = (
            crypto.encrypt(json.dumps(values), row=crypto.binding(self, "secrets"))
            if values
            else ""
        )
        self.secret_meta = meta

    def accepted_secrets(self) -> list[str]:
        """The secrets a delivery may be signed with now, current first."""
        values = self.reveal_secrets()
        return [
            value
            for value, meta in zip(values, self.secret_meta, strict=True)
            if meta["state"] in ACCEPTED_STATES
        ]

    @property
    def has_secrets(self) -> bool:
        return any(meta["state"] in ACCEPTED_STATES for meta in self.secret_meta)

    @property
    def answers_success(self) -> bool:
        return 200 <= self.response_status < 300


class Verdict(models.TextChoices):
    VERIFIED = "verified", _("Verified")
    UNVERIFIED = "unverified", _("Not verified (no secret)")
    REJECTED = "rejected", _("Signature rejected")
    MALFORMED = "malformed", _("Malformed")
    TOO_LARGE = "too_large", _("Too large")


class InboxRequest(models.Model):
    """One HTTP request an inbox received, kept byte for byte (body up to the size cap)."""

    inbox = models.ForeignKey(Inbox, on_delete=models.CASCADE, related_name="requests")
    received_at = models.DateTimeField(default=timezone.now)
    method = models.CharField(max_length=10)
    headers = models.JSONField(default=dict)
    body = models.BinaryField(default=b"")
    # Decoded copy for search; the raw bytes above stay what the signature covers.
    body_text = models.TextField(blank=True)
    body_size = models.PositiveIntegerField(default=0)
    # Body, search copy and headers: what the row weighs against the inbox's byte limit.
    stored_bytes = models.PositiveIntegerField(default=0)
    source_ip = models.GenericIPAddressField(null=True, blank=True)
    event_id = models.CharField(max_length=100, blank=True)
    event_type = models.CharField(max_length=64, blank=True)
    verdict = models.CharField(max_length=16, choices=Verdict.choices)
    reason_code = models.CharField(max_length=40, blank=True)
    reason = models.CharField(max_length=400, blank=True)
    secret_state = models.CharField(max_length=16, blank=True)
    response_status = models.PositiveSmallIntegerField()
    # Set only on the acknowledged copy of an event: the unique constraint makes a duplicate's
    # insert fail, even when two copies arrive at the same instant.
    acked_event_id = models.CharField(max_length=100, null=True, blank=True)
    duplicate_count = models.PositiveIntegerField(default=0)
    last_duplicate_at = models.DateTimeField(null=True, blank=True)
    generation = models.ForeignKey(
        "console.Generation",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="webhook_requests",
    )
    generation_applied_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-received_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["inbox", "acked_event_id"], name="inbox_event_acknowledged_once"
            )
        ]
        indexes = [models.Index(fields=["inbox", "-received_at"], name="inbox_request_recent")]

    def __str__(self) -> str:
        return f"{self.inbox} {self.received_at:%H:%M:%S} {self.verdict}"

    @property
    def body_bytes(self) -> bytes:
        return bytes(self.body)

    @property
    def body_truncated(self) -> bool:
        """A refused request whose body was kept only up to RIVYA_INBOX_REFUSED_BODY_KB."""
        return self.verdict != Verdict.TOO_LARGE and len(self.body) < self.body_size

    @property
    def raw_text(self) -> str:
        """The body exactly as received, for reading and copying (undecodable bytes as U+FFFD)."""
        return self.body_bytes.decode("utf-8", "replace")

    @property
    def pretty_body(self) -> str:
        try:
            return json.dumps(json.loads(self.body_bytes), indent=2, ensure_ascii=False)
        except ValueError:
            return self.body_text


class ForwardAttempt(models.Model):
    """One replay or live forward of a stored request, with what the target answered."""

    class Kind(models.TextChoices):
        REPLAY = "replay", _("Replay")
        FORWARD = "forward", _("Live forward")

    request = models.ForeignKey(InboxRequest, on_delete=models.CASCADE, related_name="forwards")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    target_url = models.CharField(max_length=500)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    at = models.DateTimeField(default=timezone.now)
    resigned = models.BooleanField(default=False)
    edited = models.BooleanField(default=False)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_excerpt = models.TextField(blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    error = models.CharField(max_length=400, blank=True)

    class Meta:
        ordering = ["-at", "-pk"]

    def __str__(self) -> str:
        return f"{self.kind} → {self.target_url}"

    @property
    def succeeded(self) -> bool:
        return self.response_status is not None and 200 <= self.response_status < 300


class FailureAlert(models.Model):
    """An endpoint that failed too often or was disabled by the API, shown until acknowledged."""

    key = models.ForeignKey("vault.ApiKey", on_delete=models.CASCADE, related_name="+")
    endpoint_id = models.CharField(max_length=100)
    endpoint_name = models.CharField(max_length=100)
    reason = models.CharField(max_length=300)
    raised_at = models.DateTimeField(default=timezone.now)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-raised_at"]
        constraints = [
            # One open alert per endpoint: a second check while it is open changes nothing.
            models.UniqueConstraint(
                fields=["key", "endpoint_id"],
                condition=models.Q(acknowledged_at__isnull=True),
                name="one_open_alert_per_endpoint",
            )
        ]

    def __str__(self) -> str:
        return f"{self.endpoint_name}: {self.reason}"
