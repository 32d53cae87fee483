"""The Credits page: balance per key's account, reservations, history, caps and alerts."""

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from rivya_dashboard import visibility
from rivya_dashboard.accounts.models import Role, User
from rivya_dashboard.accounts.roles import role_required
from rivya_dashboard.console import alerts, charts, credits
from rivya_dashboard.vault.grants import GrantRefused, usable_keys
from rivya_dashboard.vault.models import Action, ApiKey


def page_context(user: User, chosen: str | None, alert_forms: dict | None = None) -> dict:
    keys = list(visibility.visible_balance_keys(user).filter(status="active"))
    found = credits.balances(keys)
    shown = next((key for key in keys if str(key.pk) == chosen), keys[0] if keys else None)
    history = credits.balance_history(shown) if shown else []
    forms = alert_forms or {}
    return {
        "balances": found,
        "total": credits.total_balance(found),
        "reserved": sum((b.reserved for b in found), 0),
        "history_key": shown,
        "history": history,
        "history_chart": charts.line_chart(history) if len(history) > 1 else None,
        "caps": credits.cap_states(user),
        "refreshable": {key.pk for key in usable_keys(user, Action.BROWSE)},
        "alert_rows": [(b, forms.get(b.key.pk) or alerts.alert_form(b.key)) for b in found]
        if user.has_role(Role.ADMIN)
        else [],
    }


@role_required(Role.VIEWER)
@require_GET
def credits_page(request: HttpRequest) -> HttpResponse:
    credits.ensure_balance_refresh()
    context = page_context(request.user, request.GET.get("key"))
    template = "console/credits.html#history" if request.htmx else "console/credits.html"
    return render(request, template, context)


@role_required(Role.VIEWER)
@require_POST
def credits_refresh(request: HttpRequest, pk: int) -> HttpResponse:
    key = get_object_or_404(ApiKey, pk=pk, status="active")
    try:
        reading = credits.do_read_balance(key, request.user)
    except GrantRefused as exc:
        messages.error(request, str(exc))
        return redirect("credits")
    if reading.failed:
        messages.error(
            request,
            _("The balance of “%(key)s” could not be read: %(error)s The last known one is shown.")
            % {"key": key.label, "error": reading.error},
        )
    else:
        messages.success(request, _("Balance of “%(key)s” read just now.") % {"key": key.label})
    return redirect("credits")


@role_required(Role.ADMIN)
@require_POST
def credits_alert(request: HttpRequest, pk: int) -> HttpResponse:
    key = get_object_or_404(ApiKey, pk=pk)
    form = alerts.alert_form(key, request.POST)
    if not form.is_valid():
        context = page_context(request.user, str(key.pk), {key.pk: form})
        return render(request, "console/credits.html", context, status=400)
    alerts.do_save_alert(request.user, form, request=request)
    messages.success(request, _("Low-balance alert of “%(key)s” saved.") % {"key": key.label})
    return redirect("credits")
