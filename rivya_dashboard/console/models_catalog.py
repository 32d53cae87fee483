"""The model catalogue: `GET /models` cached in the database, filtered for the catalogue page.

The copy in the database is what every page reads, so the catalogue keeps working while the API is
down; a failed refresh only records the error and when it happened, next to the copy's age.
"""

from datetime import timedelta
from decimal import Decimal, InvalidOperation

from django import forms
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from rivya_dashboard.accounts.models import User
from rivya_dashboard.console.models import CatalogueModel, CatalogueSync
from rivya_dashboard.console.templatetags.api_labels import api_label
from rivya_dashboard.rivya.client import RivyaClient
from rivya_dashboard.rivya.errors import RivyaError
from rivya_dashboard.vault import ledger
from rivya_dashboard.vault.models import Action, ApiKey, KeyStatus


def _credits(value: object) -> Decimal:
    try:
        return Decimal(str(value))
    except (InvalidOperation, ValueError):
        return Decimal(0)


def _entries(payload: object) -> list[dict]:
    data = payload.get("data") if isinstance(payload, dict) else payload
    return [entry for entry in data or [] if isinstance(entry, dict) and entry.get("id")]


@transaction.atomic
def do_store_catalogue(payload: object) -> int:
    """Replace the cached copy with a fresh answer; models gone from the API disappear."""
    entries = _entries(payload)
    seen = []
    for position, entry in enumerate(entries):
        CatalogueModel.objects.update_or_create(
            model_id=str(entry["id"])[:100],
            defaults={
                "display_name": str(entry.get("display_name") or entry["id"])[:200],
                "category": str(entry.get("category") or "")[:32],
                "api_status": str(entry.get("api_status") or "")[:32],
                "billing_type": str(entry.get("billing_type") or "")[:32],
                "base_credits": _credits(entry.get("base_credits")),
                "position": position,
                "data": entry,
            },
        )
        seen.append(str(entry["id"])[:100])
    CatalogueModel.objects.exclude(model_id__in=seen).delete()
    now = timezone.now()
    CatalogueSync.objects.update_or_create(
        pk=1, defaults={"fetched_at": now, "attempted_at": now, "error": "", "error_request_id": ""}
    )
    return len(seen)


def do_record_failure(error: RivyaError) -> None:
    CatalogueSync.objects.update_or_create(
        pk=1,
        defaults={
            "attempted_at": timezone.now(),
            "error": error.message[:500],
            "error_request_id": (error.request_id or "")[:64],
        },
    )


def catalogue_key() -> ApiKey | None:
    return ApiKey.objects.filter(status=KeyStatus.ACTIVE).order_by("added_at", "pk").first()


def do_refresh(
    key: ApiKey | None, user: User | None = None, *, client: RivyaClient | None = None
) -> int:
    """Fetch `GET /models` through the key (or the client given for it); on failure keep the
    copy and record the error."""
    if key is None:
        do_record_failure(
            RivyaError(gettext("Add an API key on the Keys page to load the model catalogue."))
        )
        return 0
    client = client or key.client()
    action = Action.BROWSE if user is not None else None
    try:
        with ledger.recording(user, key, "models.list", action=action, client=client):
            payload = client.list_models()
    except RivyaError as exc:
        do_record_failure(exc)
        raise
    return do_store_catalogue(payload)


def is_wanted(sync: CatalogueSync) -> bool:
    """Whether a fresh copy is worth a request now: none yet, old, or the last try failed."""
    return is_stale(sync) or bool(sync.error) or not CatalogueModel.objects.exists()


def is_stale(sync: CatalogueSync) -> bool:
    if sync.fetched_at is None:
        return True
    age = timezone.now() - sync.fetched_at
    return age > timedelta(minutes=settings.RIVYA_MODELS_REFRESH_MINUTES)


class CatalogueFilterForm(forms.Form):
    """Filters over the whole cached catalogue, which is small: one query, filtered in Python."""

    q = forms.CharField(label=_("Search"), required=False, max_length=100)
    category = forms.ChoiceField(label=_("Category"), required=False)
    api_status = forms.ChoiceField(label=_("API status"), required=False)
    billing_type = forms.ChoiceField(label=_("Billing"), required=False)
    input_kind = forms.ChoiceField(label=_("Input"), required=False)

    FACETS = ("category", "api_status", "billing_type")

    def __init__(self, models: list[CatalogueModel], *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.models = models
        everything = [("", _("All"))]
        for name in self.FACETS:
            values = sorted({getattr(model, name) for model in models} - {""})
            self.fields[name].choices = everything + [(value, api_label(value)) for value in values]
        kinds = sorted({kind for model in models for kind in model.input_kinds})
        self.fields["input_kind"].choices = everything + [(kind, api_label(kind)) for kind in kinds]
        self.fields["q"].widget.attrs["type"] = "search"

    def matching(self) -> list[CatalogueModel]:
        if not self.is_valid():
            return self.models
        data = self.cleaned_data
        query = data["q"].lower()
        return [
            model
            for model in self.models
            if (not query or query in model.display_name.lower() or query in model.model_id)
            and all(not data[name] or getattr(model, name) == data[name] for name in self.FACETS)
            and (not data["input_kind"] or data["input_kind"] in model.input_kinds)
        ]
