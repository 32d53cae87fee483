"""Filtering the audit log, shared by the page and its CSV export so both show the same rows."""

import json
from collections.abc import Iterator

from django import forms
from django.db.models import QuerySet
from django.utils.translation import gettext_lazy as _

from rivya_dashboard.accounts.models import AuditEvent, User
from rivya_dashboard.date_range import DateRangeForm


class AuditFilterForm(DateRangeForm):
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

    def known_actions(self) -> list[str]:
        """Suggestions for the action field: every action the log holds."""
        actions = AuditEvent.objects.order_by("action").values_list("action", flat=True)
        return list(actions.distinct())

    def all_rows(self) -> QuerySet[AuditEvent]:
        return AuditEvent.objects.select_related("actor")

    def narrow(self, events: QuerySet[AuditEvent], data: dict) -> QuerySet[AuditEvent]:
        if data["actor"]:
            events = events.filter(actor=data["actor"])
        if data["action"]:
            events = events.filter(action__startswith=data["action"].strip())
        return events


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
