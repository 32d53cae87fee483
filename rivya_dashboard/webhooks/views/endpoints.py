"""Remote endpoints at Rivya: list, create (secret shown once), edit, enable/disable, rotate,
delete, test, delivery log and event catalogue. All through one team key, picked on the page."""

import json

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from rivya_dashboard import visibility
from rivya_dashboard.accounts.models import Role
from rivya_dashboard.accounts.reauth import recent_auth_required
from rivya_dashboard.accounts.roles import role_required
from rivya_dashboard.rivya.errors import RivyaError
from rivya_dashboard.vault.grants import GrantRefused
from rivya_dashboard.vault.models import ApiKey
from rivya_dashboard.webhooks import alerts, inboxes, remote
from rivya_dashboard.webhooks.forms import DeliveryFilterForm, EndpointCreateForm, EndpointForm
from rivya_dashboard.webhooks.models import FailureAlert

REFUSED = (RivyaError, GrantRefused)


def chosen_key(request: HttpRequest, key_pk: int | None) -> ApiKey | None:
    keys = remote.webhook_keys(request.user)
    if key_pk is None:
        return keys[0] if keys else None
    for key in keys:
        if key.pk == key_pk:
            return key
    raise Http404


def key_page(key: ApiKey) -> str:
    return f"{reverse('webhooks')}?key={key.pk}"


def no_store(response: HttpResponse) -> HttpResponse:
    # The page holds a signing secret: no browser or proxy may keep a copy.
    response["Cache-Control"] = "no-store"
    return response


@role_required(Role.ADMIN)
@require_GET
def webhooks_page(request: HttpRequest) -> HttpResponse:
    key_pk = request.GET.get("key")
    # ASCII only: str.isdigit accepts "²", which int() refuses.
    valid = key_pk and key_pk.isascii() and key_pk.isdigit()
    key = chosen_key(request, int(key_pk) if valid else None)
    endpoints, error = [], None
    if key is not None:
        try:
            endpoints = remote.list_endpoints(request.user, key)
        except REFUSED as exc:
            error = exc
    context = {
        "keys": remote.webhook_keys(request.user),
        "key": key,
        "endpoints": endpoints,
        "error": error,
        "alerts": FailureAlert.objects.filter(key=key, acknowledged_at__isnull=True),
    }
    return render(request, "webhooks/webhooks.html", context)


@role_required(Role.ADMIN)
@require_http_methods(["GET", "POST"])
def webhook_create(request: HttpRequest, key_pk: int) -> HttpResponse:
    key = chosen_key(request, key_pk)
    form = EndpointCreateForm(
        request.POST or None,
        key=key,
        receiver_url=lambda inbox: inboxes.delivery_url(inbox, key, request),
        initial={"inbox": request.GET.get("inbox")},
    )
    error = None
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            endpoint = remote.do_create_endpoint(
                request.user,
                key,
                name=data["name"],
                url=data["url"],
                event_types=data["event_types"],
                inbox=data["inbox"],
                request=request,
            )
        except REFUSED as exc:
            error = exc
        else:
            context = {"key": key, "endpoint": endpoint, "inbox": data["inbox"], "created": True}
            return no_store(render(request, "webhooks/secret_once.html", context))
    status = 400 if (form.errors or error) else 200
    context = {"key": key, "form": form, "error": error}
    return render(request, "webhooks/endpoint_form.html", context, status=status)


@role_required(Role.ADMIN)
@require_GET
def webhook_detail(request: HttpRequest, key_pk: int, endpoint_id: str) -> HttpResponse:
    key = chosen_key(request, key_pk)
    filters = DeliveryFilterForm(request.GET or None)
    try:
        endpoint = remote.get_endpoint(request.user, key, endpoint_id)
        deliveries = delivery_log(request, key, [endpoint], filters)
    except REFUSED as exc:
        messages.error(request, str(exc))
        return redirect(key_page(key))
    context = {
        "key": key,
        "endpoint": endpoint,
        "deliveries": deliveries,
        "filters": filters,
        "form": EndpointForm(initial=endpoint, key=key),
        "polling": any(d.get("status") == "pending" for d in deliveries),
    }
    template = "webhooks/endpoint.html#deliveries" if request.htmx else "webhooks/endpoint.html"
    return render(request, template, context)


def delivery_log(
    request: HttpRequest, key: ApiKey, endpoints: list[dict], filters: DeliveryFilterForm
) -> list[dict]:
    """Deliveries of the endpoints, filtered; the generation filter looks up each event's task."""
    valid = filters.is_valid()
    status = filters.cleaned_data.get("status", "") if valid else ""
    found = []
    for endpoint in endpoints:
        for delivery in remote.list_deliveries(request.user, key, endpoint["id"], status):
            found.append({**delivery, "endpoint_name": endpoint.get("name")})
    event_generation = {}
    if valid and filters.cleaned_data.get("generation"):
        events = remote.list_events(request.user, key)
        event_generation = {e.get("id"): (e.get("data") or {}).get("id") for e in events}
    if valid:
        found = [d for d in found if filters.matches(d, event_generation)]
    return sorted(found, key=lambda d: str(d.get("created_at")), reverse=True)


def delivery_key(request: HttpRequest, key_pk: int) -> ApiKey:
    """A key whose delivery log the member may read: "Manage webhooks" on it, or everything."""
    return get_object_or_404(visibility.visible_delivery_keys(request.user), pk=key_pk)


@role_required(Role.OPERATOR)
@require_GET
def webhook_deliveries(request: HttpRequest, key_pk: int) -> HttpResponse:
    key = delivery_key(request, key_pk)
    filters = DeliveryFilterForm(request.GET or None)
    error, deliveries = None, []
    try:
        endpoints = remote.list_endpoints(request.user, key)
        deliveries = delivery_log(request, key, endpoints, filters)
    except REFUSED as exc:
        error = exc
    context = {"key": key, "deliveries": deliveries, "filters": filters, "error": error}
    template = "webhooks/deliveries.html#deliveries" if request.htmx else "webhooks/deliveries.html"
    return render(request, template, context)


@role_required(Role.ADMIN)
@require_GET
def webhook_events(request: HttpRequest, key_pk: int) -> HttpResponse:
    key = chosen_key(request, key_pk)
    event_type = request.GET.get("type", "")
    if event_type not in remote.EVENT_TYPES:
        event_type = ""
    error, events = None, []
    try:
        events = remote.list_events(request.user, key, event_type)
    except REFUSED as exc:
        error = exc
    shown = [{**e, "pretty": json.dumps(e, indent=2, ensure_ascii=False)} for e in events]
    context = {
        "key": key,
        "events": shown,
        "event_type": event_type,
        "event_types": remote.EVENT_TYPES,
        "error": error,
    }
    return render(request, "webhooks/events.html", context)


@role_required(Role.ADMIN)
@require_POST
def webhook_edit(request: HttpRequest, key_pk: int, endpoint_id: str) -> HttpResponse:
    key = chosen_key(request, key_pk)
    form = EndpointForm(request.POST, key=key)
    error = None
    if form.is_valid():
        try:
            remote.do_update_endpoint(
                request.user, key, endpoint_id, request=request, **form.cleaned_data
            )
        except REFUSED as exc:
            error = exc
        else:
            messages.success(request, _("Endpoint saved."))
            return redirect("webhook-detail", key_pk=key.pk, endpoint_id=endpoint_id)
    context = {"key": key, "form": form, "error": error, "endpoint_id": endpoint_id}
    return render(request, "webhooks/endpoint_form.html", context, status=400)


@role_required(Role.ADMIN)
@require_POST
def webhook_status(request: HttpRequest, key_pk: int, endpoint_id: str) -> HttpResponse:
    key = chosen_key(request, key_pk)
    status = request.POST.get("status")
    if status not in ("active", "disabled"):
        messages.error(request, _("Choose to enable or disable the endpoint."))
    else:
        try:
            remote.do_update_endpoint(
                request.user, key, endpoint_id, status=status, request=request
            )
        except REFUSED as exc:
            messages.error(request, str(exc))
        else:
            done = _("Endpoint enabled.") if status == "active" else _("Endpoint disabled.")
            messages.success(request, done)
    return redirect("webhook-detail", key_pk=key.pk, endpoint_id=endpoint_id)


@role_required(Role.ADMIN)
@recent_auth_required
@require_POST
def webhook_rotate(request: HttpRequest, key_pk: int, endpoint_id: str) -> HttpResponse:
    key = chosen_key(request, key_pk)
    try:
        endpoint, linked = remote.do_rotate_secret(request.user, key, endpoint_id, request=request)
    except REFUSED as exc:
        messages.error(request, str(exc))
        return redirect("webhook-detail", key_pk=key.pk, endpoint_id=endpoint_id)
    context = {"key": key, "endpoint": endpoint, "linked": linked, "created": False}
    return no_store(render(request, "webhooks/secret_once.html", context))


@role_required(Role.ADMIN)
@require_http_methods(["GET", "POST"])
def webhook_delete(request: HttpRequest, key_pk: int, endpoint_id: str) -> HttpResponse:
    key = chosen_key(request, key_pk)
    if request.method == "POST":
        try:
            endpoint = remote.do_delete_endpoint(request.user, key, endpoint_id, request=request)
        except REFUSED as exc:
            messages.error(request, str(exc))
            return redirect("webhook-detail", key_pk=key.pk, endpoint_id=endpoint_id)
        name = endpoint.get("name") or endpoint_id
        messages.success(request, _("Endpoint “%(name)s” deleted.") % {"name": name})
        return redirect(key_page(key))
    try:
        endpoint = remote.get_endpoint(request.user, key, endpoint_id)
    except REFUSED as exc:
        messages.error(request, str(exc))
        return redirect(key_page(key))
    return render(request, "webhooks/endpoint_delete.html", {"key": key, "endpoint": endpoint})


@role_required(Role.ADMIN)
@require_POST
def webhook_test(request: HttpRequest, key_pk: int, endpoint_id: str) -> HttpResponse:
    key = chosen_key(request, key_pk)
    try:
        delivery = remote.do_send_test(request.user, key, endpoint_id, request=request)
    except REFUSED as exc:
        messages.error(request, str(exc))
    else:
        messages.success(
            request,
            _("Test event sent as delivery %(id)s; its result shows below.")
            % {"id": delivery.get("id")},
        )
    return redirect("webhook-detail", key_pk=key.pk, endpoint_id=endpoint_id)


@role_required(Role.ADMIN)
@require_POST
def alert_acknowledge(request: HttpRequest, pk: int) -> HttpResponse:
    alert = get_object_or_404(FailureAlert, pk=pk)
    alerts.do_acknowledge(request.user, alert, request=request)
    messages.success(
        request, _("Alert for “%(name)s” acknowledged.") % {"name": alert.endpoint_name}
    )
    back = request.POST.get("next", "")
    if url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}):
        return redirect(back)
    return redirect("webhooks")
