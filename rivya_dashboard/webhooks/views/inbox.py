"""Local inboxes: list, settings and secrets, the live request list, one request with the
signature doctor, replay and cURL, the paste-in doctor, and bulk replay."""

import time

from django.contrib import messages
from django.db.models import Count, QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from rivya_dashboard import visibility
from rivya_dashboard.accounts.models import Role
from rivya_dashboard.accounts.roles import role_required
from rivya_dashboard.webhooks import doctor, forwarding, inbox_limits, inboxes, remote
from rivya_dashboard.webhooks.forms import (
    BulkReplayForm,
    CurlForm,
    DoctorForm,
    InboxCreateForm,
    InboxSecretForm,
    InboxSettingsForm,
    ReplayForm,
    RequestFilterForm,
)
from rivya_dashboard.webhooks.models import Inbox, InboxRequest

LIST_SIZE = 50
BULK_LIMIT = 500


def visible_inboxes(request: HttpRequest) -> QuerySet[Inbox]:
    return visibility.visible_inboxes(request.user).select_related("key")


def visible_requests(request: HttpRequest) -> QuerySet[InboxRequest]:
    return visibility.visible_inbox_requests(request.user).select_related("inbox")


def receiver_url(request: HttpRequest, inbox: Inbox) -> str:
    """The inbox's receiver URL; its token lets anyone post, so only to those the rule allows."""
    if not visibility.may_see_receiver(request.user, inbox):
        return ""
    return inboxes.receiver_url(inbox, request)


@role_required(Role.OPERATOR)
@require_GET
def inbox_list(request: HttpRequest) -> HttpResponse:
    context = {
        "inboxes": visible_inboxes(request).annotate(received=Count("requests")),
        "form": InboxCreateForm(user=request.user),
        "can_manage": request.user.has_role(Role.ADMIN),
    }
    return render(request, "webhooks/inboxes.html", context)


@role_required(Role.ADMIN)
@require_POST
def inbox_create(request: HttpRequest) -> HttpResponse:
    form = InboxCreateForm(request.POST, user=request.user)
    if not form.is_valid():
        inboxes_shown = visible_inboxes(request).annotate(received=Count("requests"))
        context = {"inboxes": inboxes_shown, "form": form, "can_manage": True}
        return render(request, "webhooks/inboxes.html", context, status=400)
    inbox = inboxes.do_create_inbox(
        request.user, name=form.cleaned_data["name"], key=form.cleaned_data["key"], request=request
    )
    messages.success(request, _("Inbox created. Point a webhook endpoint at its receiver URL."))
    return redirect("inbox-detail", pk=inbox.pk)


def new_endpoint_url(request: HttpRequest, inbox: Inbox) -> str:
    """The new-endpoint form with this inbox chosen, on the inbox's key when the member may
    manage its webhooks, else on their first such key; the Webhooks page when they have none."""
    keys = remote.webhook_keys(request.user)
    key = next((k for k in keys if k.pk == inbox.key_id), keys[0] if keys else None)
    if key is None:
        return reverse("webhooks")
    return f"{reverse('webhook-create', args=[key.pk])}?inbox={inbox.pk}"


def inbox_context(request: HttpRequest, inbox: Inbox, **forms: object) -> dict:
    filters = RequestFilterForm(request.GET or None)
    data = filters.cleaned_data if filters.is_valid() else {}
    return {
        "inbox": inbox,
        "receiver_url": receiver_url(request, inbox),
        "filters": filters,
        "query": request.GET.urlencode(),
        "rows": inboxes.filtered_requests(inbox, data)[:LIST_SIZE],
        "limits": inbox_limits.limits_of(inbox),
        "can_manage": request.user.has_role(Role.ADMIN),
        "new_endpoint_url": new_endpoint_url(request, inbox),
        "settings_form": forms.get("settings_form")
        or InboxSettingsForm(instance=inbox, user=request.user),
        "secret_form": forms.get("secret_form") or InboxSecretForm(),
    }


@role_required(Role.OPERATOR)
@require_GET
def inbox_detail(request: HttpRequest, pk: int) -> HttpResponse:
    inbox = get_object_or_404(visible_inboxes(request), pk=pk)
    template = "webhooks/inbox.html#request-list" if request.htmx else "webhooks/inbox.html"
    return render(request, template, inbox_context(request, inbox))


@role_required(Role.ADMIN)
@require_POST
def inbox_settings(request: HttpRequest, pk: int) -> HttpResponse:
    inbox = get_object_or_404(visible_inboxes(request), pk=pk)
    form = InboxSettingsForm(request.POST, instance=Inbox.objects.get(pk=pk), user=request.user)
    if not form.is_valid():
        context = inbox_context(request, inbox, settings_form=form)
        return render(request, "webhooks/inbox.html", context, status=400)
    changes = {name: form.cleaned_data[name] for name in form.Meta.fields}
    inboxes.do_update_settings(request.user, inbox, changes, request=request)
    messages.success(request, _("Inbox settings saved."))
    return redirect("inbox-detail", pk=inbox.pk)


@role_required(Role.ADMIN)
@require_POST
def inbox_secret(request: HttpRequest, pk: int) -> HttpResponse:
    inbox = get_object_or_404(visible_inboxes(request), pk=pk)
    action = request.POST.get("action", "add")
    if action == "end-overlap":
        ended = inboxes.do_end_overlap(request.user, inbox, request=request)
        messages.success(
            request,
            ngettext(
                "%(count)s previous secret no longer accepted.",
                "%(count)s previous secrets no longer accepted.",
                ended,
            )
            % {"count": ended},
        )
        return redirect("inbox-detail", pk=inbox.pk)
    if action == "forget":
        inboxes.do_forget_secrets(request.user, inbox, request=request)
        messages.success(request, _("Secrets removed; requests are stored unverified."))
        return redirect("inbox-detail", pk=inbox.pk)
    form = InboxSecretForm(request.POST)
    if not form.is_valid():
        context = inbox_context(request, inbox, secret_form=form)
        return render(request, "webhooks/inbox.html", context, status=400)
    inboxes.do_add_secret(request.user, inbox, form.cleaned_data["secret"], request=request)
    messages.success(
        request, _("Secret stored; the previous one stays accepted until you end the overlap.")
    )
    return redirect("inbox-detail", pk=inbox.pk)


@role_required(Role.ADMIN)
@require_POST
def inbox_delete(request: HttpRequest, pk: int) -> HttpResponse:
    inbox = get_object_or_404(visible_inboxes(request), pk=pk)
    inboxes.do_delete_inbox(request.user, inbox, request=request)
    messages.success(request, _("Inbox “%(name)s” deleted.") % {"name": inbox.name})
    return redirect("inbox")


def secret_choices(request: HttpRequest, inbox: Inbox) -> list[tuple[int, str]]:
    """Secrets the member may sign with. Only admins: a re-signed, edited event sent back to a
    reachable inbox would pass as genuine and could finish jobs."""
    if not request.user.has_role(Role.ADMIN):
        return []
    return [(index, meta["preview"]) for index, meta in enumerate(inbox.secret_meta)]


def request_context(request: HttpRequest, row: InboxRequest, **extra: object) -> dict:
    inbox = row.inbox
    choices = secret_choices(request, inbox)
    diagnosis = doctor.diagnose(
        inboxes.candidates(inbox),
        row.headers,
        row.body_bytes,
        now=row.received_at.timestamp(),
        reference_body=inboxes.reference_body(row, inbox, row.event_id),
    )
    initial = {
        "target_url": inbox.forward_url,
        "headers": forwarding.header_lines(row.headers),
        "body": row.raw_text,
    }
    return {
        "row": row,
        "inbox": inbox,
        "diagnosis": diagnosis,
        "forwards": row.forwards.select_related("actor")[:20],
        "replay_form": extra.get("replay_form")
        or ReplayForm(initial=initial, secret_choices=choices),
        "curl_form": CurlForm(secret_choices=choices),
        "curl": extra.get("curl"),
    }


@role_required(Role.OPERATOR)
@require_GET
def inbox_request(request: HttpRequest, pk: int) -> HttpResponse:
    row = get_object_or_404(visible_requests(request), pk=pk)
    curl = None
    if "secret" in request.GET:
        form = CurlForm(request.GET, secret_choices=secret_choices(request, row.inbox))
        if form.is_valid():
            secret = forwarding.secret_for(row.inbox, form.cleaned_data["secret"])
            url = receiver_url(request, row.inbox)
            curl = doctor.curl_command(url, row.body_bytes, secret, row.event_id, time.time())
    context = request_context(request, row, curl=curl)
    template = "webhooks/request.html#curl" if request.htmx else "webhooks/request.html"
    return render(request, template, context)


@role_required(Role.OPERATOR)
@require_POST
def inbox_replay(request: HttpRequest, pk: int) -> HttpResponse:
    row = get_object_or_404(visible_requests(request), pk=pk)
    form = ReplayForm(request.POST, secret_choices=secret_choices(request, row.inbox))
    if form.is_valid():
        data = form.cleaned_data
        try:
            sent = forwarding.do_replay(
                request.user,
                row,
                data["target_url"],
                data["body"].encode("utf-8"),
                data["headers"],
                secret_index=data["resign"],
                request=request,
            )
        except forwarding.TargetRefused as error:
            form.add_error("target_url", str(error))
        else:
            outcome = sent.response_status or sent.error
            messages.success(
                request, _("Replayed; the target answered %(outcome)s.") % {"outcome": outcome}
            )
            return redirect("inbox-request", pk=row.pk)
    context = request_context(request, row, replay_form=form)
    return render(request, "webhooks/request.html", context, status=400)


@role_required(Role.OPERATOR)
@require_http_methods(["GET", "POST"])
def inbox_doctor(request: HttpRequest, pk: int) -> HttpResponse:
    inbox = get_object_or_404(visible_inboxes(request), pk=pk)
    form = DoctorForm(request.POST or None)
    diagnosis = None
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        body = data["body"].encode("utf-8")
        found = inboxes.candidates(inbox)
        if data["secret"]:
            found.append(doctor.Candidate(data["secret"].strip(), "pasted", _("the pasted secret")))
        event_id = {k.lower(): v for k, v in data["headers"].items()}.get("rivya-webhook-id", "")
        diagnosis = doctor.diagnose(
            found,
            data["headers"],
            body,
            reference_body=inboxes.reference_body(None, inbox, event_id),
        )
    context = {"inbox": inbox, "form": form, "diagnosis": diagnosis}
    return render(request, "webhooks/doctor.html", context, status=400 if form.errors else 200)


@role_required(Role.OPERATOR)
@require_http_methods(["GET", "POST"])
def inbox_bulk_replay(request: HttpRequest, pk: int) -> HttpResponse:
    inbox = get_object_or_404(visible_inboxes(request), pk=pk)
    posted = request.method == "POST"
    # The filters apply before a target is typed in, so the first page counts the selection.
    filters = RequestFilterForm(request.POST if posted else request.GET)
    rows = inboxes.filtered_requests(inbox, filters.cleaned_data if filters.is_valid() else {})
    ids = list(rows.values_list("pk", flat=True)[:BULK_LIMIT])
    form = BulkReplayForm(request.POST) if posted else BulkReplayForm(initial=request.GET.dict())
    if posted and form.is_valid():
        if form.cleaned_data["confirm_count"] != len(ids):
            form.add_error(
                None,
                ngettext(
                    "The selection now holds %(count)s request; confirm again.",
                    "The selection now holds %(count)s requests; confirm again.",
                    len(ids),
                )
                % {"count": len(ids)},
            )
        else:
            try:
                forwarding.do_bulk_replay(
                    request.user, inbox, ids, form.cleaned_data["target_url"], request=request
                )
            except forwarding.TargetRefused as error:
                form.add_error("target_url", str(error))
            else:
                messages.success(
                    request,
                    ngettext(
                        "Replaying %(count)s request in the background.",
                        "Replaying %(count)s requests in the background.",
                        len(ids),
                    )
                    % {"count": len(ids)},
                )
                return redirect("inbox-detail", pk=inbox.pk)
    context = {"inbox": inbox, "form": form, "count": len(ids), "limit": BULK_LIMIT}
    return render(request, "webhooks/bulk_replay.html", context, status=400 if posted else 200)
