"""Second-factor pages: a member's own security page, enrolment, recovery codes, verification,
and the owner's Security page (the team's requirement, resets)."""

from django.contrib import messages
from django.db.models import Count
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from rivya_dashboard.accounts import member_sessions, passkeys, second_factor
from rivya_dashboard.accounts.audit import record
from rivya_dashboard.accounts.forms import SecondFactorCodeForm, SecurityPolicyForm
from rivya_dashboard.accounts.models import Passkey, Role, TotpDevice, User
from rivya_dashboard.accounts.reauth import recent_auth_required, safe_next
from rivya_dashboard.accounts.roles import role_required


@role_required(Role.VIEWER)
@require_GET
def my_security(request: HttpRequest) -> HttpResponse:
    return render(request, "accounts/my_security.html", my_security_context(request))


def my_security_context(request: HttpRequest) -> dict:
    member = request.user
    current = member_sessions.key_hash(request.session.session_key or "")
    sessions = [
        {"row": row, "device": member_sessions.describe_device(row.user_agent)}
        for row in member_sessions.live_sessions(member)
    ]
    return {
        "sessions": sessions,
        "current_hash": current,
        "device": TotpDevice.objects.filter(user=member).first(),
        "passkeys": member.passkeys.all(),
        "recovery_left": second_factor.recovery_codes_left(member),
        "required": second_factor.factor_required(member),
        "has_factor": second_factor.has_factor(member),
    }


@role_required(Role.VIEWER)
@recent_auth_required
@sensitive_post_parameters("code")
@require_http_methods(["GET", "POST"])
def totp_enrol(request: HttpRequest) -> HttpResponse:
    if request.method == "POST" and request.POST.get("restart"):
        request.session.pop(second_factor.PENDING_TOTP_KEY, None)
        return redirect("totp-enrol")
    form = SecondFactorCodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            second_factor.do_enrol_totp(
                request.user, request.session, form.cleaned_data["code"], request
            )
        except second_factor.SecondFactorError as exc:
            form.add_error("code", str(exc))
        else:
            return enrolled(request, _("Your authenticator app is set up."))
    secret = second_factor.pending_totp_secret(request.user, request.session)
    uri = second_factor.provisioning_uri(request.user, secret)
    context = {"form": form, "secret": secret, "qr": second_factor.qr_svg(uri)}
    status = 400 if form.errors else 200
    return render(request, "accounts/totp_enrol.html", context, status=status)


def enrolled(request: HttpRequest, message: str) -> HttpResponse:
    """After a new factor: this session has proven it; a first factor gets its recovery codes."""
    request.session[second_factor.VERIFIED_KEY] = True
    messages.success(request, message)
    if second_factor.recovery_codes_left(request.user):
        return redirect("my-security")
    return show_recovery_codes(request)


def show_recovery_codes(request: HttpRequest) -> HttpResponse:
    """A new set, shown in this one response and never again (only hashes are stored)."""
    codes = second_factor.do_issue_recovery_codes(request.user, request)
    return render(request, "accounts/recovery_codes.html", {"codes": codes})


@role_required(Role.VIEWER)
@recent_auth_required
@require_POST
def recovery_codes(request: HttpRequest) -> HttpResponse:
    if not second_factor.has_factor(request.user):
        messages.error(
            request, _("Add a passkey or an authenticator app first; recovery codes back them up.")
        )
        context = my_security_context(request)
        return render(request, "accounts/my_security.html", context, status=400)
    return show_recovery_codes(request)


@role_required(Role.VIEWER)
@recent_auth_required
@require_POST
def totp_remove(request: HttpRequest) -> HttpResponse:
    try:
        second_factor.do_remove_factor(request.user, request)
    except second_factor.SecondFactorError as exc:
        messages.error(request, str(exc))
        context = my_security_context(request)
        return render(request, "accounts/my_security.html", context, status=400)
    messages.success(request, _("The authenticator app is removed."))
    return redirect("my-security")


@role_required(Role.VIEWER)
@sensitive_post_parameters("code")
@require_http_methods(["GET", "POST"])
def verify(request: HttpRequest) -> HttpResponse:
    member = request.user
    if request.session.get(second_factor.VERIFIED_KEY) or not second_factor.has_factor(member):
        return redirect("home")
    next_url = safe_next(request)
    with_passkey = bool(request.POST.get("passkey"))
    form = SecondFactorCodeForm(None if with_passkey else request.POST or None)
    status = 200
    passkey_error = ""
    if request.method == "POST":
        try:
            method = proven_factor(request, form)
        except second_factor.SecondFactorError as exc:
            if with_passkey:
                passkey_error = str(exc)
            else:
                form.add_error("code", str(exc))
            status = exc.status
        else:
            if method:
                second_factor.mark_verified(request)
                record(member, "login.second_factor", request=request, method=method)
                if method == "recovery":
                    messages.warning(request, recovery_left_message(member))
                return redirect(next_url or "home")
            status = 400
    context = {"form": form, "next": next_url, "passkey_options": "", "error": passkey_error}
    if member.passkeys.exists() and passkeys.available(request):
        context["passkey_options"] = passkeys.assertion_options(request, member, verify_user=False)
    return render(request, "accounts/verify.html", context, status=status)


def proven_factor(request: HttpRequest, form: SecondFactorCodeForm) -> str | None:
    """Which factor this post proved: "passkey", "totp" or "recovery"; None for an empty form."""
    member = request.user
    if request.POST.get("passkey"):
        second_factor.guard_failures(member)
        try:
            passkeys.check_assertion(request, member, request.POST["passkey"], verify_user=False)
        except second_factor.SecondFactorError:
            record(member, "mfa.failed", request=request)
            raise
        return "passkey"
    if not form.is_valid():
        return None
    return second_factor.do_verify_code(member, form.cleaned_data["code"], request)


def recovery_left_message(member: User) -> str:
    left = second_factor.recovery_codes_left(member)
    return ngettext(
        "You signed in with a recovery code; %(left)d is left. Set up your authenticator again "
        "on your security page and make new codes.",
        "You signed in with a recovery code; %(left)d are left. Set up your authenticator again "
        "on your security page and make new codes.",
        left,
    ) % {"left": left}


@role_required(Role.ADMIN)
@require_GET
def security_page(request: HttpRequest) -> HttpResponse:
    return render(request, "accounts/security.html", policy_page_context())


def policy_page_context() -> dict:
    policy = second_factor.current_policy()
    form = SecurityPolicyForm(
        initial={
            "require_for_admins": policy.require_for_admins,
            "require_for_everyone": policy.require_for_everyone,
        }
    )
    return security_context(form, policy)


def security_context(form: SecurityPolicyForm, policy: object) -> dict:
    members = User.objects.filter(is_active=True).order_by("username")
    with_factor = set(TotpDevice.objects.values_list("user_id", flat=True))
    with_factor |= set(Passkey.objects.values_list("user_id", flat=True))
    live = member_sessions.live_sessions().values_list("user_id").annotate(count=Count("id"))
    session_counts = dict(live)
    rows = [
        {
            "member": member,
            "has_factor": member.pk in with_factor,
            "sessions": session_counts.get(member.pk, 0),
        }
        for member in members
    ]
    return {"form": form, "policy": policy, "rows": rows}


@role_required(Role.OWNER)
@recent_auth_required
@require_POST
def security_policy(request: HttpRequest) -> HttpResponse:
    form = SecurityPolicyForm(request.POST)
    if not form.is_valid():
        context = security_context(form, second_factor.current_policy())
        return render(request, "accounts/security.html", context, status=400)
    second_factor.do_set_policy(request.user, request=request, **form.cleaned_data)
    messages.success(request, _("Security settings saved."))
    return redirect("security")


@role_required(Role.OWNER)
@recent_auth_required
@require_POST
def member_mfa_reset(request: HttpRequest, pk: int) -> HttpResponse:
    member = get_object_or_404(User, pk=pk)
    if member == request.user:
        messages.error(request, _("Change your own second factor on your security page."))
        return render(request, "accounts/security.html", policy_page_context(), status=400)
    second_factor.do_reset_factors(request.user, member, request)
    messages.success(
        request,
        _("%(name)s's second factor is removed and they are signed out; they set up a new one.")
        % {"name": member.get_username()},
    )
    return redirect("security")
