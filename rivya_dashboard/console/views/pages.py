"""The dashboard home, the health check and the styled error pages."""

import sys

from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.template.loader import render_to_string
from django.views.decorators.http import require_GET

from rivya_dashboard import database_outage
from rivya_dashboard.accounts.models import Role, User
from rivya_dashboard.accounts.roles import role_required
from rivya_dashboard.console.credits import ensure_balance_refresh
from rivya_dashboard.console.dashboard import glance
from rivya_dashboard.console.first_steps import first_steps


@role_required(Role.VIEWER)
@require_GET
def home(request: HttpRequest) -> HttpResponse:
    # The first page after sign-in starts the periodic balance reading if nothing runs it yet.
    ensure_balance_refresh()
    checklist = first_steps(request.user)
    context = {
        "checklist": checklist,
        "checklist_left": sum(1 for step in checklist if not step.done),
        "member_count": User.objects.filter(is_active=True).count(),
        "glance": glance(request.user),
    }
    return render(request, "console/home.html", context)


@login_not_required
@require_GET
def healthz(request: HttpRequest) -> HttpResponse:
    if database_outage.database_answers():
        response = JsonResponse({"status": "ok", "database": "ok"})
    else:
        response = JsonResponse({"status": "unavailable", "database": "unreachable"}, status=503)
    # Nothing secret, but a proxy must ask again each time: a stored answer would hide an outage.
    response["Cache-Control"] = "public, no-cache"
    return response


def forbidden(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return render(request, "403.html", status=403)


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return render(request, "404.html", status=404)


def server_error(request: HttpRequest) -> HttpResponse:
    # Django calls this while handling the exception: a database outage gets its own page.
    if database_outage.is_outage(sys.exception()):
        return database_outage.unavailable_page(request)
    # Without the request's context processors: they read the database, which may be the fault.
    return HttpResponse(render_to_string("500.html"), status=500)
