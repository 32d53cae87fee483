"""Accounts, keys, generations, files, chat, idempotency, the request log and the settings row."""

from django.conf import settings
from django.db import models
from django.utils import timezone

from rivya_dashboard.sandbox import choices


class Account(models.Model):
    """A sandbox customer: one wallet of integer credits shared by its keys, never negative."""

    name = models.CharField(max_length=100)
    credits = models.PositiveIntegerField(default=choices.DEFAULT_ACCOUNT_CREDITS)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return self.name


class SandboxKey(models.Model):
    """An API key: only its hash and display prefix are stored; the raw key is shown once."""

    class Status(models.TextChoices):
        ACTIVE = "active"
        REVOKED = "revoked"
        EXPIRED = "expired"

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="keys")
    name = models.CharField(max_length=100, blank=True)
    prefix = models.CharField(max_length=choices.KEY_DISPLAY_LENGTH)
    key_hash = models.CharField(max_length=64, unique=True)
    scopes = models.JSONField(default=list)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    faults = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.prefix}…"


class Generation(models.Model):
    """A generation task. Its status advances from elapsed time; see generations.advance()."""

    class Status(models.TextChoices):
        QUEUED = "queued"
        PROCESSING = "processing"
        SUCCEEDED = "succeeded"
        FAILED = "failed"

    public_id = models.CharField(max_length=40, unique=True)
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="generations")
    model = models.CharField(max_length=100)
    category = models.CharField(max_length=16)
    prompt = models.TextField(blank=True)
    params = models.JSONField(default=dict)
    client_request_id = models.CharField(max_length=128, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    # Decided at submit ([[fail]] or the failure rate) so a poll never changes the outcome.
    will_fail = models.BooleanField(default=False)
    reserved_credits = models.PositiveIntegerField()
    final_credits = models.PositiveIntegerField(default=0)
    # Absolute URL of the sandbox media route as the submitting client reached it, so results
    # can be serialized later without a request (webhook payloads).
    media_base_url = models.CharField(max_length=500)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["account", "-created_at", "-id"])]

    def __str__(self) -> str:
        return self.public_id

    @property
    def is_terminal(self) -> bool:
        return self.status in (self.Status.SUCCEEDED, self.Status.FAILED)


class UploadedFile(models.Model):
    """A Files API upload (PublicApiFile), stored under MEDIA_ROOT/sandbox/uploads/."""

    public_id = models.CharField(max_length=40, unique=True)
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="files")
    kind = models.CharField(max_length=16)
    name = models.CharField(max_length=255)
    mime_type = models.CharField(max_length=100)
    size_bytes = models.PositiveBigIntegerField()
    model = models.CharField(max_length=100, blank=True)
    storage_name = models.CharField(max_length=255)
    duration_seconds = models.FloatField(null=True, blank=True)
    duration_token = models.CharField(max_length=255, blank=True)
    client_request_id = models.CharField(max_length=128, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()

    def __str__(self) -> str:
        return self.public_id


class ChatSession(models.Model):
    public_id = models.CharField(max_length=40, unique=True)
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="chat_sessions")
    model = models.CharField(max_length=100)
    title = models.CharField(max_length=200)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["account", "-created_at", "-id"])]

    def __str__(self) -> str:
        return self.public_id


class ChatMessage(models.Model):
    class Role(models.TextChoices):
        USER = "user"
        ASSISTANT = "assistant"

    public_id = models.CharField(max_length=40, unique=True)
    session = models.ForeignKey(ChatSession, on_delete=models.CASCADE, related_name="messages")
    role = models.CharField(max_length=16, choices=Role.choices)
    content = models.TextField(blank=True)
    attachments = models.JSONField(default=list, blank=True)
    usage = models.JSONField(null=True, blank=True)
    credits = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return self.public_id


class IdempotencyRecord(models.Model):
    """One Idempotency-Key use (§5.1): in flight until the response is stored, kept 24 h."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE)
    method = models.CharField(max_length=8)
    path = models.CharField(max_length=255)
    key = models.CharField(max_length=choices.MAX_IDEMPOTENCY_KEY_LENGTH)
    body_hash = models.CharField(max_length=64)
    response_status = models.PositiveSmallIntegerField(null=True)
    response_body = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["account", "method", "path", "key"], name="sandbox_idempotency_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.method} {self.path} {self.key}"

    @property
    def in_flight(self) -> bool:
        return self.response_status is None


class RequestLog(models.Model):
    """Recent API requests for the control page; also the sliding window of the rate limit."""

    method = models.CharField(max_length=8)
    path = models.CharField(max_length=255)
    status = models.PositiveSmallIntegerField()
    request_id = models.CharField(max_length=40)
    key = models.ForeignKey(SandboxKey, null=True, blank=True, on_delete=models.SET_NULL)
    key_prefix = models.CharField(max_length=choices.KEY_DISPLAY_LENGTH, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        indexes = [models.Index(fields=["key", "created_at"])]

    def __str__(self) -> str:
        return f"{self.method} {self.path} {self.status}"


class SandboxSettings(models.Model):
    """The single row of runtime-adjustable sandbox behaviour (defaults come from settings)."""

    clock_speed = models.FloatField(default=1.0)
    failure_rate = models.FloatField(default=0.0)
    rate_limit = models.PositiveIntegerField(default=600)
    token_delay_ms = models.PositiveIntegerField(default=20)
    public_api_disabled = models.BooleanField(default=False)
    faults = models.JSONField(default=dict, blank=True)

    def __str__(self) -> str:
        return "sandbox settings"

    @classmethod
    def load(cls) -> "SandboxSettings":
        row, _ = cls.objects.get_or_create(
            pk=1,
            defaults={
                "clock_speed": settings.RIVYA_SANDBOX_CLOCK_SPEED,
                "failure_rate": settings.RIVYA_SANDBOX_FAILURE_RATE,
                "rate_limit": settings.RIVYA_SANDBOX_RATE_LIMIT,
                "token_delay_ms": settings.RIVYA_SANDBOX_TOKEN_DELAY_MS,
            },
        )
        return row
