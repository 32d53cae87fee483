"""The request inspector: search the kept calls, and prune them to the retention and total size.

The list pages by keyset (the id below the last row shown) instead of counting: with 100,000
kept calls a count would cost more than the page itself.
"""

from datetime import timedelta

from django import forms
from django.conf import settings
from django.core.cache import cache
from django.db.models import Q, QuerySet, Sum
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from rivya_dashboard.accounts.models import User
from rivya_dashboard.date_range import DateRangeForm
from rivya_dashboard.vault.grants import visible_keys
from rivya_dashboard.visibility import visible_api_calls
from rivya_dashboard.workbench.models import ApiCall

PAGE_SIZE = 50
OPERATIONS_CACHE_KEY = "workbench-operations"
OPERATIONS_CACHE_SECONDS = 300
PRUNE_BATCH = 5000
STATUS_CLASSES = {
    "2xx": Q(status__gte=200, status__lt=300),
    "3xx": Q(status__gte=300, status__lt=400),
    "4xx": Q(status__gte=400, status__lt=500),
    "5xx": Q(status__gte=500),
}


def known_operations() -> list[str]:
    """The operation names kept calls carry, for the filter's select. Names only (the API's own
    operation ids), so one list serves every member; read again every few minutes, as listing
    them means walking an index of every kept call."""

    def read() -> list[str]:
        names = ApiCall.objects.order_by("operation").values_list("operation", flat=True)
        return list(names.distinct())

    return cache.get_or_set(OPERATIONS_CACHE_KEY, read, OPERATIONS_CACHE_SECONDS)


class CallFilterForm(DateRangeForm):
    operation = forms.ChoiceField(label=_("Operation"), required=False)
    status = forms.ChoiceField(
        label=_("Status"),
        required=False,
        choices=[("", _("Any")), *[(name, name) for name in STATUS_CLASSES]],
    )
    member = forms.ModelChoiceField(
        label=_("Member"), queryset=User.objects.none(), required=False, empty_label=_("Anyone")
    )
    key = forms.ChoiceField(label=_("Key"), required=False)
    model = forms.CharField(label=_("Model"), required=False, max_length=128)
    request_id = forms.CharField(label=_("Request id"), required=False, max_length=100)
    idempotency_key = forms.CharField(label=_("Idempotency key"), required=False, max_length=255)
    mention = forms.CharField(label=_("Object id"), required=False, max_length=100)
    entry = forms.IntegerField(required=False, min_value=1, widget=forms.HiddenInput)
    before = forms.IntegerField(required=False, min_value=1, widget=forms.HiddenInput)

    def __init__(self, viewer: User, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.viewer = viewer
        self.calls = visible_api_calls(viewer)
        names = known_operations()
        wanted = self.data.get("operation") if self.is_bound else ""
        if wanted and wanted not in names and ApiCall.objects.filter(operation=wanted).exists():
            names = [*names, wanted]  # kept since the list was read
        self.fields["operation"].choices = [("", _("Any"))] + [(name, name) for name in names]
        self.fields["member"].queryset = User.objects.order_by("username")
        self.fields["key"].choices = [("", _("Any"))] + [
            (str(key.pk), key.label) for key in visible_keys(viewer)
        ]

    def all_rows(self) -> QuerySet[ApiCall]:
        return self.calls

    def narrow(self, calls: QuerySet[ApiCall], data: dict) -> QuerySet[ApiCall]:
        exact = {
            "operation": data["operation"],
            "member": data["member"],
            "key_id": data["key"],
            "model": data["model"].strip(),
            "request_id": data["request_id"].strip(),
            "idempotency_key": data["idempotency_key"].strip(),
        }
        calls = calls.filter(**{name: value for name, value in exact.items() if value})
        if data["mention"].strip():
            mention = data["mention"].strip()
            calls = calls.filter(Q(subject_id=mention) | Q(path__contains=mention))
        if data["entry"]:
            calls = calls.filter(ledger_entry_id=data["entry"])
        if data["status"]:
            calls = calls.filter(STATUS_CLASSES[data["status"]])
        if data["before"]:
            calls = calls.filter(pk__lt=data["before"])
        return calls


def page_of(calls: QuerySet[ApiCall]) -> tuple[list[ApiCall], int | None]:
    """One page, newest first, and the id the next page starts below (None at the end)."""
    rows = list(
        calls.order_by("-id").defer(
            "request_headers", "request_body", "response_headers", "response_body", "url"
        )[: PAGE_SIZE + 1]
    )
    more = len(rows) > PAGE_SIZE
    rows = rows[:PAGE_SIZE]
    return rows, rows[-1].pk if more else None


def do_prune(now: object = None) -> int:
    """Remove calls past the retention, then the oldest until the total fits the size cap; in
    batches, so memory stays flat and writers are not held up however many rows go."""
    now = now or timezone.now()
    cutoff = now - timedelta(days=settings.RIVYA_INSPECTOR_RETENTION_DAYS)
    removed = 0
    while True:
        batch = list(
            ApiCall.objects.filter(at__lt=cutoff).values_list("pk", flat=True)[:PRUNE_BATCH]
        )
        if not batch:
            break
        removed += ApiCall.objects.filter(pk__in=batch).delete()[0]
    cap = settings.RIVYA_INSPECTOR_MAX_MB * 1024 * 1024
    total = ApiCall.objects.aggregate(total=Sum("stored_bytes"))["total"] or 0
    while total > cap:
        oldest = list(
            ApiCall.objects.order_by("pk").values_list("pk", "stored_bytes")[:PRUNE_BATCH]
        )
        if not oldest:
            break
        chosen, freed = [], 0
        for pk, size in oldest:
            chosen.append(pk)
            freed += size
            if total - freed <= cap:
                break
        removed += ApiCall.objects.filter(pk__in=chosen).delete()[0]
        total -= freed
    return removed
