"""The workbench's tables: cached OpenAPI documents (one per base URL) and the calls the
inspector keeps."""

import json

from django.conf import settings
from django.db import models
from django.utils import timezone


class ApiDocument(models.Model):
    """`GET {base_url}/openapi.json` as last read, kept whole so the explorer works while the API
    is down; a failed refresh records its error next to the copy's age."""

    base_url = models.CharField(max_length=300, unique=True)
    document = models.JSONField(default=dict, blank=True)
    fetched_at = models.DateTimeField(null=True, blank=True)
    attempted_at = models.DateTimeField(null=True, blank=True)
    error = models.CharField(max_length=500, blank=True)
    error_request_id = models.CharField(max_length=64, blank=True)

    def __str__(self) -> str:
        return f"OpenAPI document of {self.base_url}"


class ShownExchange:
    """How the explorer and the inspector show a request and its answer: the status as its class
    ("2xx", or "error" when none came) and the bodies indented when they are JSON. The class
    using it has status, request_body, response_body and truncated."""

    @property
    def status_class(self) -> str:
        return f"{self.status // 100}xx" if self.status else "error"

    @property
    def pretty_request(self) -> str | None:
        return pretty_json(self.request_body) if self.request_body else None

    @property
    def pretty_response(self) -> str | None:
        return None if self.truncated else pretty_json(self.response_body)


class ApiCall(ShownExchange, models.Model):
    """One HTTP exchange the console had with Rivya, as the inspector keeps it.

    Written once the answer's body has been read (or the call closed), with credentials already
    in display form and each body cut to RIVYA_INSPECTOR_BODY_KB; `stored_bytes` is what the row
    weighs against RIVYA_INSPECTOR_MAX_MB.
    """

    at = models.DateTimeField(default=timezone.now, db_index=True)
    # Indexed through apicall_member_key_at, whose first column it is.
    member = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_index=False,
    )
    member_name = models.CharField(max_length=150, blank=True)
    key = models.ForeignKey(
        "vault.ApiKey", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    key_label = models.CharField(max_length=100, blank=True)
    ledger_entry = models.ForeignKey(
        "vault.LedgerEntry", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    operation = models.CharField(max_length=64, db_index=True)
    model = models.CharField(max_length=128, blank=True)
    idempotency_key = models.CharField(max_length=255, blank=True, db_index=True)
    request_id = models.CharField(max_length=100, blank=True, db_index=True)
    method = models.CharField(max_length=10)
    url = models.TextField()
    path = models.CharField(max_length=500, blank=True)
    # The id of the object a call created or returned ("id" of its JSON answer), so a job, file
    # or endpoint finds the call that created it as well as those naming it in their path.
    subject_id = models.CharField(max_length=100, blank=True, db_index=True)
    # Not indexed: the list walks the newest calls by id and stops at a page, which a status
    # class (a large share of all calls) fills sooner than an index range could be sorted.
    status = models.PositiveSmallIntegerField(null=True, blank=True)
    elapsed_ms = models.PositiveIntegerField(null=True, blank=True)
    request_headers = models.JSONField(default=list, blank=True)
    request_body = models.TextField(blank=True)
    request_size = models.PositiveIntegerField(default=0)
    response_headers = models.JSONField(default=list, blank=True)
    response_body = models.TextField(blank=True)
    response_size = models.PositiveBigIntegerField(default=0)
    response_truncated = models.BooleanField(default=False)
    stored_bytes = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["member", "key", "at"], name="apicall_member_key_at")]

    def __str__(self) -> str:
        return f"{self.method} {self.path} {self.status or '-'}"

    @property
    def truncated(self) -> bool:
        return self.response_truncated


def pretty_json(text: str) -> str | None:
    try:
        return json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    except (ValueError, RecursionError):
        return None


class Collection(models.Model):
    """A shared folder of saved requests."""

    name = models.CharField(max_length=100, unique=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class SavedRequest(models.Model):
    """An explorer request kept to send again: the operation and the form's values. The key is
    named by its row (whose grants decide who sees the request) and label, never its value."""

    collection = models.ForeignKey(Collection, on_delete=models.CASCADE, related_name="requests")
    name = models.CharField(max_length=100)
    note = models.TextField(blank=True)
    operation_id = models.CharField(max_length=200)
    key = models.ForeignKey("vault.ApiKey", null=True, on_delete=models.SET_NULL, related_name="+")
    key_label = models.CharField(max_length=100)
    values = models.JSONField(default=dict)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["collection__name", "name"]

    def __str__(self) -> str:
        return self.name
