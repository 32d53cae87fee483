"""History filters, the gallery's output list, and "copy as cURL" for a job."""

import json
import shlex

from django import forms
from django.db.models import Exists, OuterRef, QuerySet
from django.utils.translation import gettext_lazy as _

from rivya_dashboard.accounts.models import User
from rivya_dashboard.console.models import Generation, Output, Status
from rivya_dashboard.visibility import visible_outputs

PAGE_SIZE = 25
GALLERY_PAGE_SIZE = 24


class HistoryFilterForm(forms.Form):
    member = forms.ChoiceField(label=_("Member"), required=False)
    key = forms.ChoiceField(label=_("Key"), required=False)
    model = forms.ChoiceField(label=_("Model"), required=False)
    status = forms.ChoiceField(
        label=_("Status"), required=False, choices=[("", _("All")), *Status.choices]
    )
    since = forms.DateField(
        label=_("From"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    until = forms.DateField(
        label=_("To"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )

    def __init__(self, jobs: QuerySet[Generation], *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        everything = [("", _("All"))]
        for name, field in (("member", "member_name"), ("key", "key_label"), ("model", "model_id")):
            values = jobs.order_by(field).values_list(field, flat=True).distinct()
            self.fields[name].choices = everything + [(v, v) for v in values]

    def apply(self, jobs: QuerySet[Generation]) -> QuerySet[Generation]:
        if not self.is_valid():
            return jobs
        data = self.cleaned_data
        for name, field in (
            ("member", "member_name"),
            ("key", "key_label"),
            ("model", "model_id"),
            ("status", "status"),
        ):
            if data[name]:
                jobs = jobs.filter(**{field: data[name]})
        if data["since"]:
            jobs = jobs.filter(created_at__date__gte=data["since"])
        if data["until"]:
            jobs = jobs.filter(created_at__date__lte=data["until"])
        return jobs


def with_uncached_flag(jobs: QuerySet[Generation]) -> QuerySet[Generation]:
    """Each job marked `has_uncached` when a result lives only at the provider's expiring link."""
    uncached = Output.objects.filter(generation=OuterRef("pk"), cached_name="")
    return jobs.annotate(has_uncached=Exists(uncached))


def gallery_outputs(user: User, jobs: QuerySet[Generation]) -> QuerySet[Output]:
    return (
        visible_outputs(user)
        .filter(generation__in=jobs)
        .exclude(cached_name="")
        .select_related("generation")
        .order_by("-generation__created_at", "position")
    )


def as_curl(job: Generation) -> str:
    """The submit as a shell command: the key is a placeholder, the idempotency key the real one."""
    body = {"model": job.model_id}
    if job.prompt:
        body["prompt"] = job.prompt
    if job.params:
        body["params"] = job.params
    base_url = job.key.base_url if job.key else "https://rivya.ai/api/v1"
    return " \\\n  ".join(
        [
            f"curl -X POST {shlex.quote(base_url.rstrip('/') + '/generations')}",
            '-H "Authorization: Bearer $RIVYA_API_KEY"',
            '-H "Content-Type: application/json"',
            f"-H {shlex.quote('Idempotency-Key: ' + job.idempotency_key)}",
            f"-d {shlex.quote(json.dumps(body, ensure_ascii=False))}",
        ]
    )


def can_delete(user: User, job: Generation) -> bool:
    return user.is_admin or job.member_id == user.pk
