"""Request gates: first-run setup before anything else, and session idle/absolute limits."""

import time
from collections.abc import Callable

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils.translation import gettext as _

from rivya_dashboard.accounts.models import User

# Paths that work before the owner exists: machine endpoints and the setup page itself.
SETUP_EXEMPT_PREFIXES = ("/setup/", "/static/", "/healthz", "/sandbox/api/", "/hooks/")


class SetupRequiredMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not request.path.startswith(SETUP_EXEMPT_PREFIXES) and not owner_exists():
            return redirect("setup")
        return self.get_response(request)


def owner_exists() -> bool:
    return User.objects.filter(is_active=True).exists()


SEEN_KEY = "rivya_seen"
STARTED_KEY = "rivya_started"
SEEN_REFRESH_SECONDS = 60


class SessionLifetimeMiddleware:
    """Sign out after RIVYA_SESSION_IDLE_MINUTES without a request, or RIVYA_SESSION_MAX_HOURS."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.user.is_authenticated:
            now = int(time.time())
            session = request.session
            started = session.setdefault(STARTED_KEY, now)
            seen = session.get(SEEN_KEY, now)
            idle_limit = settings.RIVYA_SESSION_IDLE_MINUTES * 60
            if now - seen > idle_limit or now - started > settings.RIVYA_SESSION_MAX_HOURS * 3600:
                logout(request)
                messages.info(request, _("You were signed out after a period of inactivity."))
                return redirect_to_login(request.get_full_path())
            # Refresh at most once a minute so ordinary page views do not write the session.
            if now - session.get(SEEN_KEY, 0) >= SEEN_REFRESH_SECONDS:
                session[SEEN_KEY] = now
        return self.get_response(request)
