"""The workbench's tables: cached OpenAPI documents (one per base URL)."""

from django.db import models


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
