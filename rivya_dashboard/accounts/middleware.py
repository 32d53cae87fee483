"""Request gates: first-run setup before anything else, sign-in, session idle/absolute limits,
the second factor."""

import time
from collections.abc import Callable
from urllib.parse import urlencode, urlsplit

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth import middleware as auth_middleware
from django.contrib.auth.views import redirect_to_login
from django.contrib.sessions.backends.base import SessionBase
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.translation import gettext as _
from django_htmx.http import HttpResponseClientRedirect

from rivya_dashboard.accounts import reauth, second_factor
from rivya_dashboard.accounts.models import User

# Open in every state of the account: the language switcher, static files and the machine
# endpoints (health, metrics, the sandbox API, the webhook receiver).
ALWAYS_OPEN_PREFIXES = (
    "/language/",
    "/static/",
    "/healthz",
    "/metrics",
    "/sandbox/api/",
    "/hooks/",
)
# Paths that work before the owner exists: the setup page itself and the always-open ones.
SETUP_EXEMPT_PREFIXES = ("/setup/", *ALWAYS_OPEN_PREFIXES)


class SetupRequiredMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path.startswith(SETUP_EXEMPT_PREFIXES):
            return self.get_response(request)
        # A signed-in member is proof enough that setup is over, and asks no query of its own.
        if not (request.user.is_authenticated or setup_done()):
            return redirect("setup")
        return self.get_response(request)


def setup_done() -> bool:
    """Any member at all closes setup, so deactivating everyone never reopens it."""
    return User.objects.exists()


SEEN_KEY = "rivya_seen"
STARTED_KEY = "rivya_started"
SEEN_REFRESH_SECONDS = 60


def stamp_session_start(sender: type, request: HttpRequest, user: User, **kwargs: object) -> None:
    """Connected to user_logged_in: the absolute lifetime counts from the sign-in itself."""
    now = int(time.time())
    request.session[STARTED_KEY] = now
    request.session[SEEN_KEY] = now
    # A password alone proves no second factor, whatever this browser proved before.
    request.session.pop(second_factor.VERIFIED_KEY, None)
    request.session.pop(RECHECK_KEY, None)
    # Signing in with the password counts as confirming it for sensitive actions.
    reauth.stamp_authenticated(request)


def session_expiry_reason(session: SessionBase, now: int) -> str | None:
    seen = session.get(SEEN_KEY, now)
    started = session.get(STARTED_KEY, now)
    if now - started > settings.RIVYA_SESSION_MAX_HOURS * 3600:
        return _("Your session reached its maximum length. Sign in again to continue.")
    if now - seen > settings.RIVYA_SESSION_IDLE_MINUTES * 60:
        return _("You were signed out after a period of inactivity. Sign in again to continue.")
    return None


class SessionLifetimeMiddleware:
    """Sign out after RIVYA_SESSION_IDLE_MINUTES without a request, or RIVYA_SESSION_MAX_HOURS."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.user.is_authenticated:
            now = int(time.time())
            session = request.session
            reason = session_expiry_reason(session, now)
            if reason:
                logout(request)
                messages.info(request, reason)
                return to_login(request)
            # Sessions made before the stamp existed (force_login, older cookies) start now.
            session.setdefault(STARTED_KEY, now)
            # Refresh at most once a minute so ordinary page views do not write the session.
            if now - session.get(SEEN_KEY, 0) >= SEEN_REFRESH_SECONDS:
                session[SEEN_KEY] = now
        return self.get_response(request)


def to_login(request: HttpRequest) -> HttpResponse:
    """Send the visitor to sign in, and back here afterwards.

    htmx would swap the login page into a fragment, so it is told to load the whole page, and
    the way back is the page the fragment sits on, not the fragment's own URL.
    """
    if request.headers.get("HX-Request") != "true":
        return redirect_to_login(request.get_full_path())
    page = urlsplit(request.headers.get("HX-Current-URL", ""))
    back = page.path + (f"?{page.query}" if page.query else "")
    return HttpResponseClientRedirect(redirect_to_login(back or "/")["Location"])


class LoginRequiredMiddleware(auth_middleware.LoginRequiredMiddleware):
    """Django's, with htmx requests sent to sign in as a whole page (see to_login)."""

    def handle_no_permission(self, request: HttpRequest, view_func: Callable) -> HttpResponse:
        if request.headers.get("HX-Request") == "true":
            return to_login(request)
        return super().handle_no_permission(request, view_func)


# Reachable in any state of the second factor: signing out and the always-open paths.
SECOND_FACTOR_EXEMPT_PREFIXES = ("/accounts/logout/", *ALWAYS_OPEN_PREFIXES)
VERIFY_PREFIX = "/accounts/verify/"
# A member who must enrol may confirm the password that enrolment asks for.
ENROL_PREFIXES = ("/accounts/security/", "/accounts/confirm/")
RECHECK_KEY = "rivya_mfa_checked"
RECHECK_SECONDS = 60


class SecondFactorMiddleware:
    """A member with a factor proves it before anything else; one who must enrol enrols first.

    A session that proved its factor is marked (second_factor.VERIFIED_KEY). One without a factor
    and not required to have one is re-checked at most once a minute, so ordinary page views of
    password-only members cost no queries.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not request.user.is_authenticated or request.path.startswith(
            SECOND_FACTOR_EXEMPT_PREFIXES
        ):
            return self.get_response(request)
        session = request.session
        now = int(time.time())
        if (
            session.get(second_factor.VERIFIED_KEY)
            or now - session.get(RECHECK_KEY, 0) < RECHECK_SECONDS
        ):
            return self.get_response(request)
        if second_factor.has_factor(request.user):
            if request.path.startswith(VERIFY_PREFIX):
                return self.get_response(request)
            return step_to(request, "mfa-verify")
        if second_factor.factor_required(request.user):
            if request.path.startswith(ENROL_PREFIXES):
                return self.get_response(request)
            messages.info(
                request,
                _("Your team requires a second factor. Set one up to continue."),
                fail_silently=True,
            )
            return step_to(request, "my-security")
        session[RECHECK_KEY] = now
        return self.get_response(request)


def step_to(request: HttpRequest, name: str) -> HttpResponse:
    """Send the member to a sign-in step, remembering the page they asked for."""
    target = reverse(name)
    if request.method == "GET" and request.headers.get("HX-Request") != "true":
        target += "?" + urlencode({"next": request.get_full_path()})
    if request.headers.get("HX-Request") == "true":
        return HttpResponseClientRedirect(target)
    return redirect(target)
