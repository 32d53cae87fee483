"""Re-authentication before sensitive actions: a password confirmed within RIVYA_REAUTH_MINUTES.

`recent_auth_required` wraps the views that add, replace, disable or delete keys, change grants,
caps, members, webhook secrets, sandbox faults, second factors or the security settings, and
those that sign sessions out (ASVS 5 7.5.2). A stale
GET goes to the confirmation page and comes back; a stale POST is kept in the session (encrypted
under the keyring: it may carry a raw key) and the confirmation page posts the password to the
same action, which then runs with the member's original form.
"""

import json
import secrets
import time
from collections.abc import Callable
from datetime import timedelta
from functools import wraps
from urllib.parse import urlencode, urlsplit

from django.conf import settings
from django.contrib.auth import logout
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django_htmx.http import HttpResponseClientRedirect

from rivya_dashboard.accounts import passkeys
from rivya_dashboard.accounts.audit import record
from rivya_dashboard.accounts.models import AuditEvent, User
from rivya_dashboard.accounts.second_factor import SecondFactorError
from rivya_dashboard.vault import crypto

View = Callable[..., HttpResponse]

AUTH_AT_KEY = "rivya_auth_at"
PENDING_KEY = "rivya_reauth_pending"
CONFIRM_INPUT = "_reauth_password"
RESUME_FIELD = "_reauth_resume"
PASSKEY_INPUT = "_reauth_passkey"
MAX_FAILURES = 5
FAILURE_MINUTES = 15


class ConfirmationRefused(Exception):
    def __init__(self, message: str, *, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def stamp_authenticated(request: HttpRequest) -> None:
    request.session[AUTH_AT_KEY] = int(time.time())


def is_recent(request: HttpRequest) -> bool:
    confirmed = request.session.get(AUTH_AT_KEY, 0)
    return time.time() - confirmed <= settings.RIVYA_REAUTH_MINUTES * 60


def pending_binding(member: User) -> str:
    return f"session:{member.pk}:reauth"


def stash_post(request: HttpRequest) -> str:
    """Keep the refused form for after the confirmation; one at a time per session."""
    token = secrets.token_urlsafe(16)
    fields = {name: request.POST.getlist(name) for name in request.POST if name != RESUME_FIELD}
    sealed = crypto.encrypt(json.dumps(fields), row=pending_binding(request.user))
    request.session[PENDING_KEY] = {"token": token, "path": request.path, "data": sealed}
    return token


def pending_form(request: HttpRequest, token: str) -> QueryDict | None:
    pending = request.session.get(PENDING_KEY) or {}
    if not token or pending.get("token") != token or pending.get("path") != request.path:
        return None
    fields = json.loads(crypto.decrypt(pending["data"], row=pending_binding(request.user)))
    form = QueryDict(mutable=True)
    for name, values in fields.items():
        form.setlist(name, values)
    return form


def do_confirm(request: HttpRequest) -> None:
    """Check the member's password, or a passkey with user verification, from this post;
    audited either way. Too many misses sign them out."""
    member = request.user
    since = timezone.now() - timedelta(minutes=FAILURE_MINUTES)
    misses = AuditEvent.objects.filter(action="reauth.failed", actor=member, at__gte=since)
    if misses.count() >= MAX_FAILURES:
        raise ConfirmationRefused(_("Too many wrong passwords. Sign in again."), status=429)
    credential = request.POST.get(PASSKEY_INPUT, "")
    password = request.POST.get(CONFIRM_INPUT, "")
    if credential:
        method = "passkey"
        try:
            passkeys.check_assertion(request, member, credential, verify_user=True)
        except SecondFactorError as exc:
            record(member, "reauth.failed", request.path, request=request, method=method)
            raise ConfirmationRefused(str(exc)) from None
    else:
        method = "password"
        if not password or not member.check_password(password):
            record(member, "reauth.failed", request.path, request=request, method=method)
            raise ConfirmationRefused(_("That password is not right. Enter your current password."))
    # A new session key after every authentication, re-authentication included (ASVS 7.2.4).
    request.session.cycle_key()
    stamp_authenticated(request)
    record(member, "reauth.confirmed", request.path, request=request, method=method)


def confirm_page(
    request: HttpRequest, *, action: str, hidden: dict, error: str = "", status: int = 200
) -> HttpResponse:
    context = {
        "action": action,
        "hidden": hidden,
        "error": error,
        "minutes": settings.RIVYA_REAUTH_MINUTES,
        "password_field": CONFIRM_INPUT,
        "resuming": RESUME_FIELD in hidden,
        "passkey_input": PASSKEY_INPUT,
        "passkey_options": "",
    }
    if request.user.passkeys.exists() and passkeys.available(request):
        context["passkey_options"] = passkeys.assertion_options(
            request, request.user, verify_user=True
        )
    return render(request, "accounts/confirm.html", context, status=status)


def refused(request: HttpRequest, exc: ConfirmationRefused, **page: object) -> HttpResponse:
    if exc.status == 429:
        logout(request)
        context = {"signed_out": True, "error": str(exc)}
        return render(request, "accounts/confirm.html", context, status=429)
    return confirm_page(request, error=str(exc), status=exc.status, **page)


def send_to_confirm(request: HttpRequest, query: dict) -> HttpResponse:
    target = reverse("reauth-confirm") + "?" + urlencode(query)
    if request.headers.get("HX-Request") == "true":
        return HttpResponseClientRedirect(target)
    return redirect(target)


def page_of(request: HttpRequest) -> str:
    """The page to come back to: for an htmx fragment, the page it sits on."""
    if request.headers.get("HX-Request") != "true":
        return request.get_full_path()
    page = urlsplit(request.headers.get("HX-Current-URL", ""))
    return (page.path + (f"?{page.query}" if page.query else "")) or "/"


def resume(request: HttpRequest, view: View, args: tuple, kwargs: dict) -> HttpResponse:
    """The confirmation page's post: check the password, then run the action with the stashed
    form in place of this one."""
    token = request.POST.get(RESUME_FIELD, "")
    form = pending_form(request, token)
    if form is None:
        return expired_page(request)
    if not is_recent(request):
        try:
            do_confirm(request)
        except ConfirmationRefused as exc:
            hidden = {RESUME_FIELD: token}
            return refused(request, exc, action=request.path, hidden=hidden)
    del request.session[PENDING_KEY]
    request.POST = form
    return view(request, *args, **kwargs)


def expired_page(request: HttpRequest) -> HttpResponse:
    """The kept form is gone (sent from another tab, or replaced by a later one)."""
    return render(request, "accounts/confirm.html", {"expired": True}, status=409)


def safe_next(request: HttpRequest) -> str:
    candidate = request.POST.get("next") or request.GET.get("next") or ""
    allowed = url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    )
    return candidate if allowed else ""


def recent_auth_required(view: View) -> View:
    @wraps(view)
    def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if request.method == "POST" and RESUME_FIELD in request.POST:
            return resume(request, view, args, kwargs)
        if is_recent(request):
            return view(request, *args, **kwargs)
        if request.method == "POST":
            return send_to_confirm(request, {"resume": stash_post(request)})
        return send_to_confirm(request, {"next": page_of(request)})

    wrapped.reauth_required = True
    return wrapped
