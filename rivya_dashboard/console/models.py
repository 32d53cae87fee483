"""The console's own copies of remote things: the model catalogue, generations, outputs, uploads."""

from datetime import datetime
from urllib.parse import urlsplit

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class CatalogueModel(models.Model):
    """One entry of `GET /models`, kept whole in `data` so new fields survive without migrations."""

    model_id = models.CharField(max_length=100, primary_key=True)
    display_name = models.CharField(max_length=200)
    category = models.CharField(max_length=32, db_index=True)
    api_status = models.CharField(max_length=32, db_index=True)
    billing_type = models.CharField(max_length=32, blank=True)
    base_credits = models.DecimalField(max_digits=12, decimal_places=2, default=0)
    position = models.PositiveIntegerField(default=0)
    data = models.JSONField(default=dict)

    class Meta:
        ordering = ["position", "model_id"]

    def __str__(self) -> str:
        return self.display_name

    @property
    def is_available(self) -> bool:
        return self.api_status == "available"

    @property
    def input_kinds(self) -> list[str]:
        return list(self.data.get("supported_api_inputs") or [])


class CatalogueSync(models.Model):
    """The single row that remembers when the catalogue was fetched and why the last try failed."""

    fetched_at = models.DateTimeField(null=True, blank=True)
    attempted_at = models.DateTimeField(null=True, blank=True)
    error = models.CharField(max_length=500, blank=True)
    error_request_id = models.CharField(max_length=64, blank=True)

    def __str__(self) -> str:
        return f"catalogue fetched {self.fetched_at}"

    @classmethod
    def current(cls) -> "CatalogueSync":
        sync, _created = cls.objects.get_or_create(pk=1)
        return sync


class Status(models.TextChoices):
    SUBMITTING = "submitting", _("Submitting")
    QUEUED = "queued", _("Queued")
    PROCESSING = "processing", _("Processing")
    SUCCEEDED = "succeeded", _("Succeeded")
    FAILED = "failed", _("Failed")
    LOST = "lost", _("Stopped tracking")


TERMINAL = {Status.SUCCEEDED, Status.FAILED, Status.LOST}


class GenerationQuerySet(models.QuerySet):
    def running(self) -> "GenerationQuerySet":
        return self.exclude(status__in=TERMINAL)


class Generation(models.Model):
    """A job submitted through the console, tracked until the API reports a terminal state."""

    member = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    member_name = models.CharField(max_length=150)
    key = models.ForeignKey(
        "vault.ApiKey", null=True, on_delete=models.SET_NULL, related_name="generations"
    )
    key_label = models.CharField(max_length=100)
    model_id = models.CharField(max_length=100, db_index=True)
    # Copied from the catalogue at submit: the poll back-off depends on it, and the catalogue may
    # change or lose the model while the job runs.
    category = models.CharField(max_length=32, blank=True)
    prompt = models.TextField(blank=True)
    params = models.JSONField(default=dict, blank=True)
    reference_file_ids = models.JSONField(default=list, blank=True)
    idempotency_key = models.CharField(max_length=100)
    client_request_id = models.CharField(max_length=100, blank=True)
    batch = models.UUIDField(null=True, blank=True, db_index=True)

    estimate_credits = models.DecimalField(max_digits=12, decimal_places=2, default=0)
    reserved_credits = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    final_credits = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)

    remote_id = models.CharField(max_length=100, blank=True, db_index=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.SUBMITTING)
    error_code = models.CharField(max_length=64, blank=True)
    error_message = models.CharField(max_length=500, blank=True)
    request_id = models.CharField(max_length=64, blank=True)

    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    next_poll_at = models.DateTimeField(null=True, blank=True, db_index=True)
    poll_count = models.PositiveIntegerField(default=0)

    objects = GenerationQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            # A double click, a browser retry or a resubmitted form lands on the same row.
            models.UniqueConstraint(
                fields=["key", "idempotency_key"], name="generation_key_idempotency_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.model_id} {self.remote_id or self.pk}"

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL

    @property
    def elapsed_seconds(self) -> int:
        end: datetime = self.finished_at or timezone.now()
        return max(0, int((end - self.created_at).total_seconds()))

    @property
    def cost_differs(self) -> bool:
        return (
            self.status == Status.SUCCEEDED
            and self.final_credits is not None
            and self.final_credits != self.estimate_credits
        )


class Output(models.Model):
    """One result URL of a generation and the console's own cached copy of it: the only place a
    job's result URLs are kept."""

    generation = models.ForeignKey(Generation, on_delete=models.CASCADE, related_name="outputs")
    position = models.PositiveSmallIntegerField()
    original_url = models.URLField(max_length=2000)
    cached_name = models.CharField(max_length=200, blank=True)
    content_type = models.CharField(max_length=100, blank=True)
    size_bytes = models.PositiveBigIntegerField(default=0)
    error = models.CharField(max_length=300, blank=True)
    cached_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["generation", "position"]
        constraints = [
            models.UniqueConstraint(
                fields=["generation", "position"], name="output_generation_position_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.generation_id}#{self.position}"

    @property
    def media_kind(self) -> str:
        return self.content_type.split("/", 1)[0] if self.content_type else ""


class UploadedFile(models.Model):
    """A file sent to the Files API, kept so generation forms can pick it again."""

    remote_id = models.CharField(max_length=100)
    key = models.ForeignKey(
        "vault.ApiKey", null=True, on_delete=models.SET_NULL, related_name="uploaded_files"
    )
    key_label = models.CharField(max_length=100)
    uploader = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    uploader_name = models.CharField(max_length=150)
    kind = models.CharField(max_length=16, db_index=True)
    name = models.CharField(max_length=255)
    mime_type = models.CharField(max_length=100, blank=True)
    size_bytes = models.PositiveBigIntegerField(default=0)
    model_id = models.CharField(max_length=100, blank=True)
    url = models.URLField(max_length=2000)
    duration_seconds = models.FloatField(null=True, blank=True)
    duration_token = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["key", "remote_id"], name="uploaded_file_key_unique")
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.remote_id})"

    @property
    def is_expired(self) -> bool:
        return self.expires_at is not None and self.expires_at <= timezone.now()

    def as_reference_item(self) -> dict:
        """The item for `params.referenceMediaItems`; durationToken rides along for audio/video."""
        item = {"url": self.url, "kind": self.kind, "name": self.name}
        if self.mime_type:
            item["mimeType"] = self.mime_type
        if self.duration_seconds is not None:
            item["durationSeconds"] = self.duration_seconds
        if self.duration_token:
            item["durationToken"] = self.duration_token
        return item


class BalanceReading(models.Model):
    """One `GET /credits` answer (or its failure) for a key's account: the balance history."""

    key = models.ForeignKey("vault.ApiKey", on_delete=models.CASCADE, related_name="+")
    at = models.DateTimeField(default=timezone.now)
    credits = models.DecimalField(max_digits=14, decimal_places=4, null=True, blank=True)
    error = models.CharField(max_length=300, blank=True)
    request_id = models.CharField(max_length=100, blank=True)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["key", "at"], name="balance_key_at")]

    def __str__(self) -> str:
        return f"{self.key_id} {self.at:%Y-%m-%d %H:%M} {self.credits}"

    @property
    def failed(self) -> bool:
        return self.credits is None

    @property
    def age_seconds(self) -> float:
        return (timezone.now() - self.at).total_seconds()


class BalanceAlert(models.Model):
    """The low-balance threshold of one key's account, where to tell, and whether it is crossed."""

    key = models.OneToOneField("vault.ApiKey", on_delete=models.CASCADE, related_name="+")
    threshold = models.PositiveIntegerField(_("low-balance threshold"), null=True, blank=True)
    alert_url = models.URLField(_("alert URL"), max_length=500, blank=True)
    # Set when a reading first falls below the threshold, cleared when one rises above it: one
    # banner, one POST and one audit row per crossing, not per reading.
    below_since = models.DateTimeField(null=True, blank=True)
    notified_at = models.DateTimeField(null=True, blank=True)
    notify_error = models.CharField(max_length=300, blank=True)

    def __str__(self) -> str:
        return f"{self.key_id} below {self.threshold}"

    @property
    def url_display(self) -> str:
        """Scheme and host only: chat webhook URLs carry their secret in the path."""
        if not self.alert_url:
            return ""
        parts = urlsplit(self.alert_url)
        return f"{parts.scheme}://{parts.netloc}/…"


class TaskOrigin(models.Model):
    """The request that enqueued a background task, so the worker logs under its request id."""

    task_id = models.CharField(max_length=64, primary_key=True)
    request_id = models.CharField(max_length=64)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    def __str__(self) -> str:
        return f"{self.task_id} ← {self.request_id}"
