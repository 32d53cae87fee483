"""Signed-in sessions: a member's own list and sign-outs, an admin's "sign out everywhere", and
the password change that ends every other session."""

from django.contrib import messages
from django.contrib.auth import update_session_auth_hash
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods, require_POST

from rivya_dashboard.accounts import member_sessions
from rivya_dashboard.accounts.audit import record
from rivya_dashboard.accounts.forms import ChangePasswordForm
from rivya_dashboard.accounts.models import MemberSession, Role, User
from rivya_dashboard.accounts.reauth import recent_auth_required
from rivya_dashboard.accounts.roles import role_required
from rivya_dashboard.accounts.second_factor_views import my_security_context, policy_page_context


def refused_on_my_page(request: HttpRequest, message: str) -> HttpResponse:
    messages.error(request, message)
    context = my_security_context(request)
    return render(request, "accounts/my_security.html", context, status=400)


@role_required(Role.VIEWER)
@recent_auth_required
@require_POST
def session_end(request: HttpRequest, pk: int) -> HttpResponse:
    row = get_object_or_404(MemberSession, pk=pk, user=request.user, ended_at__isnull=True)
    try:
        member_sessions.do_end_own_session(request, row)
    except member_sessions.SessionRuleError as exc:
        return refused_on_my_page(request, str(exc))
    messages.success(request, _("That session is signed out."))
    return redirect("my-security")


@role_required(Role.VIEWER)
@recent_auth_required
@require_POST
def sessions_end_others(request: HttpRequest) -> HttpResponse:
    ended = member_sessions.do_end_other_sessions(request)
    messages.success(
        request,
        ngettext(
            "%(count)d other session is signed out.",
            "%(count)d other sessions are signed out.",
            ended,
        )
        % {"count": ended},
    )
    return redirect("my-security")


@role_required(Role.ADMIN)
@recent_auth_required
@require_POST
def member_sign_out(request: HttpRequest, pk: int) -> HttpResponse:
    member = get_object_or_404(User, pk=pk)
    try:
        member_sessions.do_sign_out_everywhere(request.user, member, request)
    except member_sessions.SessionRuleError as exc:
        messages.error(request, str(exc))
        return render(request, "accounts/security.html", policy_page_context(), status=400)
    messages.success(
        request, _("%(name)s is signed out everywhere.") % {"name": member.get_username()}
    )
    return redirect("security")


@role_required(Role.VIEWER)
@sensitive_post_parameters("old_password", "new_password1", "new_password2")
@require_http_methods(["GET", "POST"])
def password_change(request: HttpRequest) -> HttpResponse:
    form = ChangePasswordForm(request.user, request.POST or None)
    if request.method == "POST" and form.is_valid():
        member = form.save()
        # Keeps this session (with a new key); every other one ends.
        update_session_auth_hash(request, member)
        ended = member_sessions.end_sessions(member, keep=request.session.session_key)
        record(member, "password.changed", request=request, sessions_ended=ended)
        messages.success(request, _("Password changed. Your other sessions are signed out."))
        return redirect("my-security")
    status = 400 if form.errors else 200
    return render(request, "accounts/password_change.html", {"form": form}, status=status)
