"""The sandbox control page (owner/admin): accounts, keys, timing, faults, webhooks, requests."""

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.db.models import Count
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from rivya_dashboard.accounts.models import Role
from rivya_dashboard.accounts.reauth import recent_auth_required
from rivya_dashboard.accounts.roles import role_required
from rivya_dashboard.sandbox.control_actions import (
    do_create_key,
    do_revoke_key,
    do_set_faults,
    do_top_up,
    do_update_behaviour,
    do_update_webhook_settings,
)
from rivya_dashboard.sandbox.control_forms import (
    BehaviourForm,
    FaultForm,
    KeyCreateForm,
    PageQueryForm,
    TopUpForm,
    WebhookSettingsForm,
)
from rivya_dashboard.sandbox.models import (
    Account,
    RequestLog,
    SandboxKey,
    SandboxSettings,
    WebhookDelivery,
    WebhookSettings,
)

TEMPLATE = "sandbox/control.html"
RECENT_REQUESTS = 50
RECENT_DELIVERIES = 20


def sandbox_on(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """With RIVYA_SANDBOX off every sandbox URL is a 404, the control page included."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not settings.RIVYA_SANDBOX:
            raise Http404("The sandbox is switched off.")
        return view(request, *args, **kwargs)

    return wrapped


def fault_initial(key: SandboxKey | None) -> dict[str, Any]:
    current = key.faults if key else SandboxSettings.load().faults
    return {"target": key.pk if key else "global", **current}


def page_context(request: HttpRequest, **forms: Any) -> dict[str, Any]:
    fault_key = forms.get("fault_key")
    return {
        "accounts": Account.objects.annotate(key_count=Count("keys")).order_by("name", "pk"),
        "keys": SandboxKey.objects.select_related("account").order_by("-created_at", "-pk"),
        "sandbox": SandboxSettings.load(),
        "fault_key": fault_key,
        "requests": RequestLog.objects.order_by("-created_at", "-pk")[:RECENT_REQUESTS],
        "deliveries": WebhookDelivery.objects.select_related("endpoint", "event").order_by(
            "-created_at", "-pk"
        )[:RECENT_DELIVERIES],
        "top_up_form": TopUpForm(),
        "key_form": forms.get("key_form") or KeyCreateForm(),
        "behaviour_form": forms.get("behaviour_form")
        or BehaviourForm(instance=SandboxSettings.load()),
        "fault_form": forms.get("fault_form") or FaultForm(initial=fault_initial(fault_key)),
        "webhook_form": WebhookSettingsForm(instance=WebhookSettings.load()),
        "top_up_error": forms.get("top_up_error"),
        "query_error": forms.get("query_error"),
    }


def back(section: str) -> HttpResponse:
    return redirect(reverse("sandbox-control") + "#" + section)


@role_required(Role.ADMIN)
@require_GET
@sandbox_on
def control_page(request: HttpRequest) -> HttpResponse:
    query = PageQueryForm(request.GET)
    if not query.is_valid():
        error = _("This address names no key; open a key's faults from the Keys list.")
        return render(request, TEMPLATE, page_context(request, query_error=error), status=400)
    fault_key = SandboxKey.objects.filter(pk=query.cleaned_data["faults"]).first()
    template = TEMPLATE + "#requests" if request.htmx else TEMPLATE
    return render(request, template, page_context(request, fault_key=fault_key))


@role_required(Role.ADMIN)
@require_POST
@sandbox_on
def control_top_up(request: HttpRequest, pk: int) -> HttpResponse:
    account = get_object_or_404(Account, pk=pk)
    form = TopUpForm(request.POST)
    if not form.is_valid():
        error = _("Top up %(name)s: %(problem)s") % {
            "name": account.name,
            "problem": " ".join(form.errors["amount"]),
        }
        return render(request, TEMPLATE, page_context(request, top_up_error=error), status=400)
    do_top_up(request.user, account, form.cleaned_data["amount"], request)
    messages.success(
        request,
        ngettext(
            "Added %(amount)d credit to %(name)s.",
            "Added %(amount)d credits to %(name)s.",
            form.cleaned_data["amount"],
        )
        % {"amount": form.cleaned_data["amount"], "name": account.name},
    )
    return back("accounts")


@role_required(Role.ADMIN)
@require_POST
@sandbox_on
@never_cache
def control_key_create(request: HttpRequest) -> HttpResponse:
    form = KeyCreateForm(request.POST)
    if not form.is_valid():
        return render(request, TEMPLATE, page_context(request, key_form=form), status=400)
    key, raw_key = do_create_key(
        request.user,
        name=form.cleaned_data["name"],
        account=form.cleaned_data["account"],
        credits=form.cleaned_data["credits"],
        scopes=form.cleaned_data["scopes"],
        request=request,
    )
    base_url = request.build_absolute_uri(reverse("sandbox-control")).split("/sandbox/")[0]
    context = {"key": key, "raw_key": raw_key, "base_url": base_url + "/sandbox/api/v1"}
    return render(request, "sandbox/key_created.html", context)


@role_required(Role.ADMIN)
@require_POST
@sandbox_on
def control_key_revoke(request: HttpRequest, pk: int) -> HttpResponse:
    key = get_object_or_404(SandboxKey, pk=pk)
    do_revoke_key(request.user, key, request)
    messages.success(request, _("Key %(prefix)s… is revoked.") % {"prefix": key.prefix})
    return back("keys")


@role_required(Role.ADMIN)
@require_POST
@sandbox_on
def control_behaviour(request: HttpRequest) -> HttpResponse:
    form = BehaviourForm(request.POST, instance=SandboxSettings.load())
    if not form.is_valid():
        return render(request, TEMPLATE, page_context(request, behaviour_form=form), status=400)
    do_update_behaviour(request.user, form, request)
    messages.success(request, _("Sandbox behaviour saved."))
    return back("behaviour")


@role_required(Role.ADMIN)
@recent_auth_required
@require_POST
@sandbox_on
def control_faults(request: HttpRequest) -> HttpResponse:
    form = FaultForm(request.POST)
    if not form.is_valid():
        return render(request, TEMPLATE, page_context(request, fault_form=form), status=400)
    key = form.cleaned_data["target"]
    do_set_faults(request.user, key, form.fault_set(), request)
    if key is None:
        messages.success(request, _("Global faults saved."))
    else:
        messages.success(request, _("Faults of key %(prefix)s… saved.") % {"prefix": key.prefix})
    return back("faults")


@role_required(Role.ADMIN)
@require_POST
@sandbox_on
def control_webhooks(request: HttpRequest) -> HttpResponse:
    # Two check boxes: every submission is valid, so the form is saved as it comes.
    form = WebhookSettingsForm(request.POST, instance=WebhookSettings.load())
    do_update_webhook_settings(request.user, form, request)
    messages.success(request, _("Webhook settings saved."))
    return back("webhooks")
