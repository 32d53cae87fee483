"""Webhook endpoints, events and deliveries of the sandbox (contract §9).

The signing secret is stored as text because the sandbox must sign with it, exactly as Rivya must;
it leaves the sandbox only in the create and rotate-secret responses.
"""

import secrets
from datetime import datetime

from django.conf import settings
from django.db import models
from django.utils import timezone

from rivya_dashboard.sandbox import choices, ids

__all__ = [
    "WebhookAttempt",
    "WebhookDelivery",
    "WebhookEndpoint",
    "WebhookEvent",
    "WebhookSettings",
]

SECRET_PREFIX = "whsec_"  # noqa: S105 - the public prefix of §9.1, not a secret
SECRET_BODY_BYTES = 24


def new_signing_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(SECRET_BODY_BYTES)


class WebhookSettings(models.Model):
    """Runtime switches of the webhook emulation, set on the sandbox control page (one row)."""

    allow_local_targets = models.BooleanField(default=False)
    fast_retries = models.BooleanField(default=False)
    # The one scheduled sweep (webhooks_delivery.sweep); a sweep whose time differs is stale.
    sweep_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return "webhook settings"

    @classmethod
    def load(cls) -> "WebhookSettings":
        row, _ = cls.objects.get_or_create(
            pk=1,
            defaults={
                "allow_local_targets": settings.RIVYA_SANDBOX_WEBHOOK_ALLOW_LOCAL,
                "fast_retries": settings.RIVYA_SANDBOX_WEBHOOK_FAST_RETRIES,
            },
        )
        return row


class WebhookEndpoint(models.Model):
    class Status(models.TextChoices):
        ACTIVE = "active"
        DISABLED = "disabled"
        REVOKED = "revoked"

    public_id = models.CharField(max_length=40, unique=True, editable=False)
    account = models.ForeignKey(
        "sandbox.Account", on_delete=models.CASCADE, related_name="webhook_endpoints"
    )
    name = models.CharField(max_length=100)
    url = models.URLField(max_length=2048)
    event_types = models.JSONField(default=list)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ACTIVE)
    signing_secret = models.CharField(max_length=80)
    # During a rotation overlap the old secret keeps signing until previous_secret_until.
    previous_secret = models.CharField(max_length=80, blank=True, default="")
    previous_secret_until = models.DateTimeField(null=True, blank=True)
    # Webhook faults set on this key apply to the endpoint's deliveries.
    created_by_key = models.ForeignKey(
        "sandbox.SandboxKey", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    failure_count = models.PositiveIntegerField(default=0)
    failed_events_in_a_row = models.PositiveIntegerField(default=0)
    last_success_at = models.DateTimeField(null=True, blank=True)
    last_failure_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)
    disabled_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.public_id

    def save(self, *args, **kwargs) -> None:
        if not self.public_id:
            self.public_id = ids.public_id(choices.WEBHOOK_ENDPOINT_PREFIX)
        if not self.signing_secret:
            self.signing_secret = new_signing_secret()
        super().save(*args, **kwargs)

    @property
    def secret_preview(self) -> str:
        return f"{self.signing_secret[:8]}...{self.signing_secret[-6:]}"

    def active_secrets(self, now: datetime | None = None) -> list[str]:
        now = now or timezone.now()
        current = [self.signing_secret]
        if self.previous_secret and self.previous_secret_until and self.previous_secret_until > now:
            return [*current, self.previous_secret]
        return current


class WebhookEvent(models.Model):
    """One event (§9.5). A generation's event row is also the marker that it was emitted."""

    public_id = models.CharField(max_length=40, unique=True, editable=False)
    account = models.ForeignKey(
        "sandbox.Account", on_delete=models.CASCADE, related_name="webhook_events"
    )
    type = models.CharField(max_length=40)
    task_id = models.CharField(max_length=40, blank=True, default="")
    data = models.JSONField(default=dict)
    test = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["task_id"],
                condition=models.Q(test=False),
                name="sandbox_webhook_event_once_per_task",
            )
        ]

    def __str__(self) -> str:
        return self.public_id

    def save(self, *args, **kwargs) -> None:
        if not self.public_id:
            self.public_id = ids.public_id(choices.WEBHOOK_EVENT_PREFIX)
        super().save(*args, **kwargs)


class WebhookDelivery(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending"
        SUCCEEDED = "succeeded"
        FAILED = "failed"

    public_id = models.CharField(max_length=40, unique=True, editable=False)
    endpoint = models.ForeignKey(
        WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries"
    )
    event = models.ForeignKey(WebhookEvent, on_delete=models.CASCADE, related_name="deliveries")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempt = models.PositiveSmallIntegerField(default=0)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.CharField(max_length=300, blank=True, default="")
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    next_retry_at = models.DateTimeField(null=True, blank=True, db_index=True)
    # Webhook faults in force when the event was emitted (global, key, X-Sandbox-Fault header).
    faults = models.JSONField(default=list, blank=True)
    # Set once the out-of-order fault has held this delivery back, so it is held only once.
    held_back = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.public_id

    def save(self, *args, **kwargs) -> None:
        if not self.public_id:
            self.public_id = ids.public_id(choices.WEBHOOK_DELIVERY_PREFIX)
        super().save(*args, **kwargs)


class WebhookAttempt(models.Model):
    """One POST of a delivery, kept for the control page; never stores the secret."""

    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="attempts")
    number = models.PositiveSmallIntegerField()
    started_at = models.DateTimeField()
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.CharField(max_length=300, blank=True, default="")
    duration_ms = models.PositiveIntegerField(default=0)
    fault = models.CharField(max_length=80, blank=True, default="")

    class Meta:
        ordering = ["delivery", "number"]

    def __str__(self) -> str:
        return f"{self.delivery.public_id} #{self.number}"
