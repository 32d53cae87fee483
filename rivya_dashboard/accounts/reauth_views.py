"""The confirmation page that sensitive actions send a member to (see accounts/reauth.py)."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods

from rivya_dashboard.accounts import reauth
from rivya_dashboard.accounts.models import Role
from rivya_dashboard.accounts.roles import role_required


@role_required(Role.VIEWER)
@sensitive_post_parameters(reauth.CONFIRM_INPUT, reauth.PASSKEY_INPUT)
@require_http_methods(["GET", "POST"])
def confirm(request: HttpRequest) -> HttpResponse:
    token = request.GET.get("resume", "")
    if token:
        pending = request.session.get(reauth.PENDING_KEY) or {}
        if pending.get("token") != token:
            return reauth.expired_page(request)
        hidden = {reauth.RESUME_FIELD: token}
        return reauth.confirm_page(request, action=pending["path"], hidden=hidden)
    next_url = reauth.safe_next(request) or reverse("home")
    page = {"action": reverse("reauth-confirm"), "hidden": {"next": next_url}}
    if request.method == "POST":
        try:
            reauth.do_confirm(request)
        except reauth.ConfirmationRefused as exc:
            return reauth.refused(request, exc, **page)
        return redirect(next_url)
    return reauth.confirm_page(request, **page)
