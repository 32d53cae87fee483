"""Webhook endpoints, events and deliveries of the sandbox (contract §9).

The sandbox must sign with the signing secret, exactly as Rivya must, so it keeps it readable to
itself, but only as AES-GCM ciphertext under the vault's keyring, bound to its row and field,
like every other stored secret; it is opened only to sign. It leaves the sandbox only in the
create and rotate-secret responses. Nothing imports the sandbox and the sandbox imports no
other app, so the sealer is named by settings.RIVYA_SANDBOX_SEALER (a module with
encrypt(text, *, row) and decrypt(token, *, row)) and imported when first needed.
"""

import secrets
from datetime import datetime
from importlib import import_module
from types import ModuleType

from django.conf import settings
from django.db import models, transaction
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


def sealer() -> ModuleType:
    return import_module(settings.RIVYA_SANDBOX_SEALER)


class SealedSecretField(models.TextField):
    """Ciphertext from the sealer; key rotation finds every such column by this mark."""

    holds_ciphertext = True


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
    sealed_signing_secret = SealedSecretField(blank=True, default="")
    # During a rotation overlap the old secret keeps signing until previous_secret_until.
    sealed_previous_secret = SealedSecretField(blank=True, default="")
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

    def __init__(self, *args, **kwargs) -> None:
        # Secrets set before the row has an id wait here: the ciphertext is bound to the id.
        self._unsealed: dict[str, str] = {}
        super().__init__(*args, **kwargs)

    def save(self, *args, **kwargs) -> None:
        if not self.public_id:
            self.public_id = ids.public_id(choices.WEBHOOK_ENDPOINT_PREFIX)
        if self.pk is None:
            with transaction.atomic():
                super().save(*args, **kwargs)
                pending, self._unsealed = self._unsealed, {}
                for field, value in pending.items():
                    self.seal(field, value)
                if not self.sealed_signing_secret:
                    self.signing_secret = new_signing_secret()
                super().save(update_fields=["sealed_signing_secret", "sealed_previous_secret"])
            return
        if not self.sealed_signing_secret:
            self.signing_secret = new_signing_secret()
        super().save(*args, **kwargs)

    def row(self, field: str) -> str:
        return f"{self._meta.db_table}:{self.pk}:{field}"

    def seal(self, field: str, value: str) -> None:
        if not value:
            setattr(self, field, "")
            self._unsealed.pop(field, None)
        elif self.pk is None:
            self._unsealed[field] = value
        else:
            setattr(self, field, sealer().encrypt(value, row=self.row(field)))

    def unseal(self, field: str) -> str:
        if field in self._unsealed:
            return self._unsealed[field]
        token = getattr(self, field)
        return sealer().decrypt(token, row=self.row(field)) if token else ""

    @property
    def signing_secret(self) -> str:
        return self.unseal("sealed_signing_secret")

    @signing_secret.setter
    def signing_secret(self, value: str) -> None:
        self.seal("sealed_signing_secret", value)

    @property
    def previous_secret(self) -> str:
        return self.unseal("sealed_previous_secret")

    @previous_secret.setter
    def previous_secret(self, value: str) -> None:
        self.seal("sealed_previous_secret", value)

    @property
    def secret_preview(self) -> str:
        return f"{self.signing_secret[:8]}...{self.signing_secret[-6:]}"

    def active_secrets(self, now: datetime | None = None) -> list[str]:
        now = now or timezone.now()
        current = [self.signing_secret]
        overlap = self.previous_secret_until and self.previous_secret_until > now
        if self.sealed_previous_secret and overlap:
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
