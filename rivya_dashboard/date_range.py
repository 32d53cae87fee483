"""The filter form of the log pages (audit log, call history, request inspector): From/To dates
by whole UTC days, and one gate between the filters and the rows."""

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

    def all_rows(self) -> QuerySet:
        """The rows the page shows before any filter: those the member may see."""
        raise NotImplementedError(f"{type(self).__name__} names its rows")

    def narrow(self, rows: QuerySet, data: dict) -> QuerySet:
        """rows under the page's own filters (the dates are applied after); data is valid."""
        return rows

    def filtered(self) -> QuerySet:
        rows = self.all_rows()
        if not self.is_bound:
            return rows
        if not self.is_valid():
            # Rows under a filter error would look like its answer, so there are none.
            return rows.none()
        return self.within_dates(self.narrow(rows, self.cleaned_data))
