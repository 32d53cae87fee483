"""The From/To date fields that filter log pages by whole UTC days (audit log, call history)."""

from datetime import UTC, date, datetime, time, timedelta

from django import forms
from django.db.models import QuerySet
from django.utils.translation import gettext_lazy as _

DATE_FIELDS = ("date_from", "date_to")


def day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


class DateRangeForm(forms.Form):
    date_from = forms.DateField(
        label=_("From"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    date_to = forms.DateField(
        label=_("To"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # A base class's fields come first; the page's own filters read better before the dates.
        self.order_fields([name for name in self.fields if name not in DATE_FIELDS])

    def clean(self) -> dict:
        data = super().clean()
        start, end = data.get("date_from"), data.get("date_to")
        if start and end and start > end:
            raise forms.ValidationError(_("The start date is after the end date; swap them."))
        return data

    def within_dates(self, rows: QuerySet, field: str = "at") -> QuerySet:
        """rows from the start of date_from to the end of date_to; call after is_valid()."""
        start, end = self.cleaned_data["date_from"], self.cleaned_data["date_to"]
        if start:
            rows = rows.filter(**{f"{field}__gte": day_start(start)})
        if end:
            rows = rows.filter(**{f"{field}__lt": day_start(end) + timedelta(days=1)})
        return rows
