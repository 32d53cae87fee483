"""Spend and calls from the ledger, by day or hour, member, key, model, operation and status.

Everything is aggregated in SQL, two grouped queries a page, answered from a covering index that
starts with `at` (console migration 0003); a call's credits are its final charge, or its
reservation while it is in flight, exactly as the caps count them.
"""

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from urllib.parse import urlencode

from django import forms
from django.db.models import (
    Case,
    CharField,
    Count,
    DecimalField,
    F,
    Func,
    Q,
    QuerySet,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Coalesce
from django.utils import formats, timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from rivya_dashboard.console import charts
from rivya_dashboard.console.models import CatalogueModel, Generation, Status
from rivya_dashboard.console.templatetags.api_labels import api_label
from rivya_dashboard.date_range import day_start
from rivya_dashboard.vault.models import LedgerEntry

MAX_DAYS = 366
DEFAULT_DAYS = 30
# Ranges this short are charted by hour; a day's bar would hide the shape of a busy afternoon.
HOURLY_UP_TO_DAYS = 2
DRILL_ROWS = 50
LAST_DAY = date.max - timedelta(days=1)

SPENT = Coalesce(
    "credits_final", "credits_reserved", output_field=DecimalField(max_digits=20, decimal_places=4)
)
SUCCEEDED = Q(http_status__gte=200, http_status__lt=300)
OUTCOME = Case(
    When(http_status__gte=200, http_status__lt=300, then=Value("ok")),
    When(http_status__isnull=True, then=Value("in_flight")),
    default=Value("failed"),
    output_field=CharField(),
)
OUTCOMES = {
    "ok": gettext_lazy("Succeeded"),
    "failed": gettext_lazy("Failed"),
    "in_flight": gettext_lazy("In flight"),
}
DIMENSIONS = {
    "member": gettext_lazy("Member"),
    "key": gettext_lazy("Key"),
    "model": gettext_lazy("Model"),
    "operation": gettext_lazy("Operation"),
    "status": gettext_lazy("Status"),
}
# Breakdown dimension -> the ledger column that names a group; status groups by OUTCOME.
COLUMNS = {"member": "member_name", "key": "key_label", "model": "model", "operation": "operation"}


def usage_form(params: dict[str, str], entries: QuerySet[LedgerEntry]) -> "UsageFilterForm":
    """A bound form whose empty dates show the default range instead of blank inputs; entries
    are the ledger rows the member may see (visibility.visible_usage)."""
    start, end = default_range()
    data = {"date_from": start.isoformat(), "date_to": end.isoformat()}
    data.update({name: value for name, value in params.items() if value})
    return UsageFilterForm(entries, data)


def default_range(today: date | None = None) -> tuple[date, date]:
    today = today or timezone.now().date()
    return today - timedelta(days=DEFAULT_DAYS - 1), today


class UsageFilterForm(forms.Form):
    date_from = forms.DateField(
        label=gettext_lazy("From"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    date_to = forms.DateField(
        label=gettext_lazy("To"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    # Selects of what the visible ledger holds, as History's filters are: a name typed by hand
    # could never match a display name.
    member = forms.ChoiceField(label=gettext_lazy("Member"), required=False)
    key = forms.ChoiceField(label=gettext_lazy("Key"), required=False)
    model = forms.ChoiceField(label=gettext_lazy("Model"), required=False)
    operation = forms.ChoiceField(label=gettext_lazy("Operation"), required=False)
    status = forms.ChoiceField(
        label=gettext_lazy("Status"),
        required=False,
        choices=[("", gettext_lazy("Any")), *OUTCOMES.items()],
    )
    # The start of one chart bar whose ledger rows are listed below the charts.
    bucket = forms.DateTimeField(
        required=False,
        widget=forms.HiddenInput,
        error_messages={"invalid": gettext_lazy("That bar's link is broken; click the bar again.")},
    )
    # The dimension of the breakdown table, chosen with the tabs above it.
    by = forms.ChoiceField(
        required=False,
        choices=list(DIMENSIONS.items()),
        widget=forms.HiddenInput,
        error_messages={
            "invalid_choice": gettext_lazy(
                "Break the spend down by member, key, model, operation or status; pick a tab."
            )
        },
    )

    def __init__(self, entries: QuerySet[LedgerEntry], *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.entries = entries
        names = dict(CatalogueModel.objects.values_list("model_id", "display_name"))
        labels = {"model": names.get, "operation": api_label}
        for name, column in COLUMNS.items():
            values = entries.exclude(**{column: ""}).values_list(column, flat=True)
            shown = labels.get(name, str)
            choices = sorted(
                {(value, shown(value) or value) for value in values.order_by().distinct()}
            )
            self.fields[name].choices = [("", _("Any")), *choices]
            refused = _("No call in the ledger has %(field)s “%(value)s”; pick one from the list.")
            # Django fills in %(value)s when it refuses a value.
            self.fields[name].error_messages["invalid_choice"] = refused.replace(
                "%(field)s", str(DIMENSIONS[name]).lower()
            )

    def clean(self) -> dict:
        data = super().clean()
        start, end = default_range()
        start, end = data.get("date_from") or start, data.get("date_to") or end
        # The range ends at the next midnight, which the last representable day does not have.
        end = min(end, LAST_DAY)
        if start > end:
            raise forms.ValidationError(_("The start date is after the end date; swap them."))
        if (end - start).days + 1 > MAX_DAYS:
            raise forms.ValidationError(
                _("Choose at most %(days)s days; narrow the range or export it in parts.")
                % {"days": MAX_DAYS}
            )
        data["date_from"], data["date_to"] = start, end
        bucket = data.get("bucket")
        # A bar's link from another range would list rows the charts do not show.
        after_range = day_start(end) + timedelta(days=1)
        if bucket is not None and not day_start(start) <= bucket < after_range:
            self.add_error("bucket", self.fields["bucket"].error_messages["invalid"])
        data["by"] = data.get("by") or "member"
        return data

    @property
    def hourly(self) -> bool:
        data = self.cleaned_data
        return (data["date_to"] - data["date_from"]).days + 1 <= HOURLY_UP_TO_DAYS

    def filtered(self) -> QuerySet[LedgerEntry]:
        """The ledger rows of the chosen range and filters; call only on a valid form."""
        data = self.cleaned_data
        entries = self.entries.filter(
            at__gte=day_start(data["date_from"]),
            at__lt=day_start(data["date_to"]) + timedelta(days=1),
        )
        for name, column in COLUMNS.items():
            if data[name]:
                entries = entries.filter(**{column: data[name]})
        if data["status"]:
            entries = entries.alias(outcome=OUTCOME).filter(outcome=data["status"])
        return entries

    def drilled(self) -> QuerySet[LedgerEntry] | None:
        """The rows behind one chart bar, when a bar was chosen."""
        bucket = self.cleaned_data.get("bucket")
        if bucket is None:
            return None
        width = timedelta(hours=1) if self.hourly else timedelta(days=1)
        return self.filtered().filter(at__gte=bucket, at__lt=bucket + width)


@dataclass(frozen=True)
class Totals:
    credits: Decimal
    calls: int
    failed: int


def totals(entries: QuerySet[LedgerEntry]) -> Totals:
    found = entries.aggregate(
        credits=Sum(SPENT), calls=Count("id"), failed=Count("id", filter=~SUCCEEDED)
    )
    return Totals(found["credits"] or Decimal(0), found["calls"], found["failed"])


class BucketStart(Func):
    """The UTC day or hour of `at` as text ("2026-11-25" or "2026-11-25 13"), computed by the
    database itself: Django's TruncDay calls a Python function per row on SQLite."""

    output_field = CharField()

    def __init__(self, expression: str, hourly: bool) -> None:
        super().__init__(expression)
        self.hourly = hourly

    def as_sqlite(self, compiler: object, connection: object, **extra: object) -> tuple:
        # SQLite keeps aware datetimes as "YYYY-MM-DD HH:MM:SS[.ffffff]" text in UTC.
        length = 13 if self.hourly else 10
        return self.as_sql(compiler, connection, template=f"substr(%(expressions)s, 1, {length})")

    def as_postgresql(self, compiler: object, connection: object, **extra: object) -> tuple:
        pattern = "YYYY-MM-DD HH24" if self.hourly else "YYYY-MM-DD"
        return self.as_sql(
            compiler,
            connection,
            template=f"to_char(%(expressions)s AT TIME ZONE 'UTC', '{pattern}')",
        )


@dataclass(frozen=True)
class Bucket:
    start: datetime
    credits: Decimal
    calls: int
    failed: int


def series(entries: QuerySet[LedgerEntry], start: date, end: date, hourly: bool) -> list[Bucket]:
    """One bucket per day (or hour) of the range, empty ones included, so gaps show as gaps."""
    rows = (
        entries.order_by()
        .annotate(bucket=BucketStart("at", hourly))
        .values("bucket")
        .annotate(credits=Sum(SPENT), calls=Count("id"), failed=Count("id", filter=~SUCCEEDED))
    )
    found = {row["bucket"]: row for row in rows}
    step = timedelta(hours=1) if hourly else timedelta(days=1)
    pattern = "%Y-%m-%d %H" if hourly else "%Y-%m-%d"
    moment, stop = day_start(start), day_start(end) + timedelta(days=1)
    buckets = []
    while moment < stop:
        row = found.get(moment.strftime(pattern), {})
        buckets.append(
            Bucket(
                moment, row.get("credits") or Decimal(0), row.get("calls", 0), row.get("failed", 0)
            )
        )
        moment += step
    return buckets


@dataclass(frozen=True)
class Group:
    name: str
    value: str
    credits: Decimal
    calls: int
    failed: int
    # Width of the group's bar, 0-100, against the biggest group of the table.
    share: int


def breakdown(entries: QuerySet[LedgerEntry], dimension: str, limit: int = 12) -> list[Group]:
    """The biggest groups of one dimension by credits, then calls; one GROUP BY over the
    covering index, so only the chosen table costs a pass over the range."""
    column = COLUMNS.get(dimension)
    rows = (
        entries.order_by()
        .annotate(group=OUTCOME if column is None else F(column))
        .values("group")
        .annotate(credits=Sum(SPENT), calls=Count("id"), failed=Count("id", filter=~SUCCEEDED))
    )
    found = {
        row["group"]: Totals(row["credits"] or Decimal(0), row["calls"], row["failed"])
        for row in rows
    }
    return top_groups(dimension, found, limit)


def top_groups(dimension: str, found: dict[str, Totals], limit: int) -> list[Group]:
    ranked = sorted(found.items(), key=lambda item: (-item[1].credits, -item[1].calls, item[0]))
    ranked = ranked[:limit]
    most = max((t.credits for _v, t in ranked), default=0)
    most_calls = max((t.calls for _v, t in ranked), default=0)
    groups = []
    for value, tally in ranked:
        if most:
            share = round(tally.credits * 100 / most)
        else:
            share = round(tally.calls * 100 / most_calls) if most_calls else 0
        groups.append(
            Group(
                group_name(dimension, value),
                value,
                tally.credits,
                tally.calls,
                tally.failed,
                share,
            )
        )
    return groups


def group_name(dimension: str, value: str) -> str:
    if dimension == "status":
        return str(OUTCOMES.get(value, value))
    return value or _("(none)")


@dataclass(frozen=True)
class EstimateGap:
    model_id: str
    jobs: int
    estimated: Decimal
    charged: Decimal

    @property
    def difference(self) -> Decimal:
        return self.charged - self.estimated

    @property
    def percent(self) -> int | None:
        if not self.estimated:
            return None
        return round(self.difference * 100 / self.estimated)


def estimate_gaps(jobs: QuerySet[Generation], start: date, end: date) -> list[EstimateGap]:
    """Per model, the console's estimate against what finished jobs were really charged."""
    rows = (
        jobs.filter(
            status=Status.SUCCEEDED,
            final_credits__isnull=False,
            created_at__gte=day_start(start),
            created_at__lt=day_start(end) + timedelta(days=1),
        )
        .order_by()
        .values("model_id")
        .annotate(jobs=Count("id"), estimated=Sum("estimate_credits"), charged=Sum("final_credits"))
        .order_by("model_id")
    )
    return [
        EstimateGap(row["model_id"], row["jobs"], row["estimated"], row["charged"]) for row in rows
    ]


FILTER_NAMES = ("date_from", "date_to", "member", "key", "model", "operation", "status", "by")


def query(data: dict, **changes: object) -> str:
    """The query string of the current filters with some changed; the bar and table links."""
    params = {name: data.get(name) for name in FILTER_NAMES}
    params.update(changes)
    return "?" + urlencode({k: str(v) for k, v in params.items() if v not in (None, "")})


def bucket_label(start: datetime, hourly: bool) -> tuple[str, str]:
    """The bar's full label (for its title and the table) and its axis label."""
    if hourly:
        return start.strftime("%Y-%m-%d %H:00"), start.strftime("%H:00")
    # The axis names the month in the member's language.
    return start.strftime("%Y-%m-%d"), formats.date_format(start, "d M")


def report(form: UsageFilterForm, jobs: QuerySet[Generation]) -> dict:
    """The page's figures; jobs are the generations the member may see, for the estimate gaps."""
    data = form.cleaned_data
    entries = form.filtered()
    buckets = series(entries, data["date_from"], data["date_to"], form.hourly)
    inputs = []
    for bucket in buckets:
        label, short = bucket_label(bucket.start, form.hourly)
        link = query(data, bucket=bucket.start.strftime("%Y-%m-%dT%H:%M"))
        inputs.append(charts.BarInput(label, short, bucket.credits, link))
    drilled = form.drilled()
    by = data["by"]
    return {
        "totals": Totals(
            sum((b.credits for b in buckets), Decimal(0)),
            sum(b.calls for b in buckets),
            sum(b.failed for b in buckets),
        ),
        "buckets": list(zip(buckets, inputs, strict=True)),
        "chart": charts.bar_chart(inputs),
        "calls_chart": charts.bar_chart(
            [
                charts.BarInput(i.label, i.short_label, b.calls, i.href)
                for b, i in zip(buckets, inputs, strict=True)
            ],
            counts=True,
        ),
        "by": by,
        "by_label": DIMENSIONS[by],
        "tabs": [(name, label, query(data, by=name)) for name, label in DIMENSIONS.items()],
        "groups": [(g, query(data, by=by, **{by: g.value})) for g in breakdown(entries, by)],
        "gaps": estimate_gaps(jobs, data["date_from"], data["date_to"]),
        "drilled": list(drilled[:DRILL_ROWS]) if drilled is not None else None,
        "drilled_count": drilled.count() if drilled is not None else 0,
        "hourly": form.hourly,
        "export_query": query(data),
    }
