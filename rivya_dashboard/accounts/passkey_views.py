"""Passkey pages: adding one (the browser's ceremony runs on the page) and removing one."""

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods, require_POST

from rivya_dashboard.accounts import passkeys, second_factor
from rivya_dashboard.accounts.models import Passkey, Role
from rivya_dashboard.accounts.reauth import recent_auth_required
from rivya_dashboard.accounts.roles import role_required
from rivya_dashboard.accounts.second_factor_views import enrolled, my_security_context


class PasskeyForm(forms.Form):
    name = forms.CharField(
        label=gettext_lazy("Name"),
        max_length=60,
        initial=gettext_lazy("Passkey"),
        help_text=gettext_lazy("So you can tell your keys apart, e.g. “Work laptop”."),
    )


@role_required(Role.VIEWER)
@recent_auth_required
@require_http_methods(["GET", "POST"])
def passkey_add(request: HttpRequest) -> HttpResponse:
    form = PasskeyForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            credential = request.POST.get("credential", "")
            passkeys.do_register(request, credential, form.cleaned_data["name"])
        except second_factor.SecondFactorError as exc:
            form.add_error(None, str(exc))
        else:
            return enrolled(request, _("Your passkey is added."))
    context = {"form": form, "available": passkeys.available(request)}
    if context["available"]:
        context["options"] = passkeys.registration_options(request)
    status = 400 if form.errors else 200
    return render(request, "accounts/passkey_add.html", context, status=status)


@role_required(Role.VIEWER)
@recent_auth_required
@require_POST
def passkey_remove(request: HttpRequest, pk: int) -> HttpResponse:
    passkey = get_object_or_404(Passkey, pk=pk, user=request.user)
    try:
        second_factor.do_remove_factor(request.user, request, passkey=passkey)
    except second_factor.SecondFactorError as exc:
        messages.error(request, str(exc))
        context = my_security_context(request)
        return render(request, "accounts/my_security.html", context, status=400)
    messages.success(request, _("The passkey “%(name)s” is removed.") % {"name": passkey.name})
    return redirect("my-security")
