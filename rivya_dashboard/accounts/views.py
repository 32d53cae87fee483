"""First-run setup, sign-in, the team page and the audit log."""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import NON_FIELD_ERRORS
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from rivya_dashboard import visibility
from rivya_dashboard.accounts import team
from rivya_dashboard.accounts.audit import record
from rivya_dashboard.accounts.audit_filters import AuditFilterForm, audit_csv_rows
from rivya_dashboard.accounts.forms import (
    InviteAcceptForm,
    InviteForm,
    MemberCreationForm,
    RoleForm,
    SignInForm,
)
from rivya_dashboard.accounts.middleware import setup_done
from rivya_dashboard.accounts.models import Invite, Role, User, hash_token
from rivya_dashboard.accounts.reauth import recent_auth_required
from rivya_dashboard.accounts.roles import role_required
from rivya_dashboard.csv_export import csv_download


@login_not_required
@sensitive_post_parameters("password1", "password2")
@require_http_methods(["GET", "POST"])
def setup(request: HttpRequest) -> HttpResponse:
    if setup_done():
        return redirect("home")
    form = MemberCreationForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        with transaction.atomic():
            # Two first visitors racing: the second finds the owner and goes to sign in.
            if setup_done():
                return redirect("login")
            owner = form.save(commit=False)
            owner.role = Role.OWNER
            owner.save()
            record(owner, "member.owner_created", owner.get_username(), request=request)
        login(request, owner, backend="django.contrib.auth.backends.ModelBackend")
        messages.success(request, _("Welcome! Your owner account is ready."))
        return redirect("home")
    status = 400 if form.errors else 200
    return render(request, "accounts/setup.html", {"form": form}, status=status)


class SignInView(auth_views.LoginView):
    form_class = SignInForm
    template_name = "accounts/login.html"
    redirect_authenticated_user = True

    def form_invalid(self, form: SignInForm) -> HttpResponse:
        status = 429 if form.has_error(NON_FIELD_ERRORS, "locked") else 400
        return self.render_to_response(self.get_context_data(form=form), status=status)


sign_in = login_not_required(SignInView.as_view())


@role_required(Role.OWNER)
@require_GET
def team_page(request: HttpRequest) -> HttpResponse:
    invite_form = InviteForm(initial={"days": settings.RIVYA_INVITE_DAYS})
    return render(request, "accounts/team.html", team_context(invite_form))


def team_context(invite_form: InviteForm) -> dict:
    return {
        "members": User.objects.order_by("-is_active", "username"),
        "invites": Invite.objects.pending().select_related("created_by")[:50],
        "invite_form": invite_form,
        "role_choices": Role.choices,
        "role_descriptions": visibility.role_descriptions(),
    }


@role_required(Role.OWNER)
@recent_auth_required
@require_POST
def invite_create(request: HttpRequest) -> HttpResponse:
    form = InviteForm(request.POST)
    if not form.is_valid():
        return render(request, "accounts/team.html", team_context(form), status=400)
    invite, token = team.do_invite(request.user, request=request, **form.cleaned_data)
    link = request.build_absolute_uri(reverse("invite-accept", args=[token]))
    # The link is shown once: only its hash is stored.
    context = {"invite": invite, "link": link}
    return render(request, "accounts/invite_created.html", context)


@role_required(Role.OWNER)
@recent_auth_required
@require_POST
def invite_revoke(request: HttpRequest, pk: int) -> HttpResponse:
    invite = get_object_or_404(Invite, pk=pk)
    team.do_revoke_invite(request.user, invite, request)
    messages.success(request, _("Invitation for %(email)s revoked.") % {"email": invite.email})
    return redirect("team")


@login_not_required
@sensitive_post_parameters("password1", "password2")
@require_http_methods(["GET", "POST"])
def invite_accept(request: HttpRequest, token: str) -> HttpResponse:
    invite = Invite.objects.filter(token_hash=hash_token(token)).first()
    if invite is None:
        raise Http404(_("This invitation link is not valid."))
    if not invite.is_usable:
        context = {"invite": invite}
        return render(request, "accounts/invite_unusable.html", context, status=410)
    form = InviteAcceptForm(request.POST or None, invite_email=invite.email)
    if request.method == "POST" and form.is_valid():
        try:
            member = team.do_accept_invite(invite, form, request)
        except team.TeamRuleError as exc:
            return render(
                request,
                "accounts/invite_unusable.html",
                {"invite": invite, "error": exc},
                status=410,
            )
        login(request, member, backend="django.contrib.auth.backends.ModelBackend")
        messages.success(request, _("Welcome to the team, %(name)s.") % {"name": member.username})
        return redirect("home")
    status = 400 if form.errors else 200
    return render(
        request, "accounts/invite_accept.html", {"form": form, "invite": invite}, status=status
    )


@role_required(Role.OWNER)
@recent_auth_required
@require_POST
def member_role(request: HttpRequest, pk: int) -> HttpResponse:
    member = get_object_or_404(User, pk=pk)
    form = RoleForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Choose one of the listed roles."))
        return redirect("team")
    try:
        team.do_change_role(request.user, member, form.cleaned_data["role"], request)
    except team.TeamRuleError as exc:
        messages.error(request, str(exc))
        return redirect("team")
    messages.success(
        request,
        _("%(name)s is now %(role)s.")
        % {"name": member.username, "role": member.get_role_display()},
    )
    # An owner who handed over ownership can no longer open the team page.
    return redirect("home" if member == request.user and not member.is_owner else "team")


@role_required(Role.OWNER)
@recent_auth_required
@require_POST
def member_active(request: HttpRequest, pk: int) -> HttpResponse:
    member = get_object_or_404(User, pk=pk)
    active = request.POST.get("active") == "1"
    try:
        team.do_set_active(request.user, member, active, request)
    except team.TeamRuleError as exc:
        messages.error(request, str(exc))
        return redirect("team")
    if active:
        messages.success(request, _("%(name)s can sign in again.") % {"name": member.username})
    else:
        messages.success(
            request, _("%(name)s is deactivated and signed out.") % {"name": member.username}
        )
    return redirect("team")


@role_required(Role.ADMIN)
@require_GET
def audit_page(request: HttpRequest) -> HttpResponse:
    form = AuditFilterForm(request.GET or None)
    events = form.filtered()
    context = {"form": form, "events": events[:200], "total": events.count()}
    status = 400 if form.errors else 200
    template = "accounts/audit.html#audit-table" if request.htmx else "accounts/audit.html"
    return render(request, template, context, status=status)


@role_required(Role.ADMIN)
@require_GET
def audit_export(request: HttpRequest) -> HttpResponse:
    form = AuditFilterForm(request.GET or None)
    if form.errors:
        context = {"form": form, "events": [], "total": 0}
        return render(request, "accounts/audit.html", context, status=400)
    return csv_download(audit_csv_rows(form.filtered()), "rivya-audit.csv")
