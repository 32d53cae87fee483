"""Filtering the audit log, shared by the page and its CSV export so both show the same rows."""

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta

from django import forms
from django.db.models import QuerySet
from django.utils.translation import gettext_lazy as _

from rivya_dashboard.accounts.models import AuditEvent, User


class AuditFilterForm(forms.Form):
    actor = forms.ModelChoiceField(
        label=_("Actor"),
        queryset=User.objects.order_by("username"),
        required=False,
        empty_label=_("Anyone"),
    )
    action = forms.CharField(
        label=_("Action"),
        required=False,
        max_length=64,
        # A prefix matches: "member." finds every member action.
        widget=forms.TextInput(attrs={"list": "audit-actions", "placeholder": _("e.g. member.")}),
    )
    date_from = forms.DateField(
        label=_("From"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    date_to = forms.DateField(
        label=_("To"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )

    def clean(self) -> dict:
        data = super().clean()
        start, end = data.get("date_from"), data.get("date_to")
        if start and end and start > end:
            raise forms.ValidationError(_("The start date is after the end date; swap them."))
        return data

    def known_actions(self) -> list[str]:
        """Suggestions for the action field: every action the log holds."""
        actions = AuditEvent.objects.order_by("action").values_list("action", flat=True)
        return list(actions.distinct())

    def filtered(self) -> QuerySet[AuditEvent]:
        events = AuditEvent.objects.select_related("actor")
        if not self.is_bound:
            return events
        if not self.is_valid():
            # Rows under a filter error would look like its answer, so there are none.
            return events.none()
        data = self.cleaned_data
        if data["actor"]:
            events = events.filter(actor=data["actor"])
        if data["action"]:
            events = events.filter(action__startswith=data["action"].strip())
        if data["date_from"]:
            events = events.filter(at__gte=day_start(data["date_from"]))
        if data["date_to"]:
            events = events.filter(at__lt=day_start(data["date_to"]) + timedelta(days=1))
        return events


def day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def audit_csv_rows(events: QuerySet[AuditEvent]) -> Iterator[list[str]]:
    yield ["time_utc", "actor", "action", "target", "ip", "detail"]
    for event in events.iterator(chunk_size=500):
        yield [
            event.at.isoformat(),
            event.actor_name,
            event.action,
            event.target,
            event.ip or "",
            json.dumps(event.detail, sort_keys=True),
        ]
