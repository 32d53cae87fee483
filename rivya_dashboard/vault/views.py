"""The Keys section: team keys, their grants, and the ledger of calls made with them."""

from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect

from rivya_dashboard.accounts.models import Role
from rivya_dashboard.accounts.reauth import recent_auth_required
from rivya_dashboard.accounts.roles import role_required
from rivya_dashboard.vault import grants, keys
from rivya_dashboard.vault.forms import (
    GrantForm,
    KeyAddForm,
    KeyDeleteForm,
    KeyReplaceForm,
    StatusForm,
)
from rivya_dashboard.vault.models import ApiKey, KeyGrant


@role_required(Role.VIEWER)
@require_GET
def keys_page(request: HttpRequest) -> HttpResponse:
    user = request.user
    context = {
        "keys": grants.visible_keys(user).select_related("added_by"),
        "my_grants": grants.grant_summaries(user),
        "can_manage": user.has_role(Role.ADMIN),
        "sandbox_enabled": settings.RIVYA_SANDBOX,
    }
    return render(request, "vault/keys.html", context)


@role_required(Role.ADMIN)
@recent_auth_required
@sensitive_post_parameters("secret")
@require_http_methods(["GET", "POST"])
def key_add(request: HttpRequest) -> HttpResponse:
    form = KeyAddForm(request.POST or None)
    rejection = None
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            key = keys.do_add_key(
                request.user,
                label=data["label"],
                environment=data["environment"],
                base_url=data["base_url"],
                raw=data["secret"],
                request=request,
            )
        except keys.KeyRejected as exc:
            rejection = exc
        else:
            messages.success(request, added_message(key))
            return redirect("key-detail", pk=key.pk)
    status = 400 if (form.errors or rejection) else 200
    context = {"form": form, "rejection": rejection}
    return render(request, "vault/key_add.html", context, status=status)


def added_message(key: ApiKey) -> str:
    denied = key.denied_scopes()
    if not denied:
        return _("Key “%(label)s” tested and saved.") % {"label": key}
    return _(
        "Key “%(label)s” tested and saved, but it lacks these scopes: %(scopes)s. "
        "Re-create it at Rivya with them if the team needs those pages."
    ) % {"label": key, "scopes": ", ".join(denied)}


@role_required(Role.ADMIN)
@recent_auth_required
@require_POST
def key_sandbox(request: HttpRequest) -> HttpResponse:
    try:
        key = keys.do_add_sandbox_key(request.user, request=request)
    except keys.KeyRejected as exc:
        messages.error(request, keys.rejection_text(exc))
        return redirect("keys")
    messages.success(request, _("Sandbox key “%(label)s” is ready to use.") % {"label": key})
    return redirect("key-detail", pk=key.pk)


@role_required(Role.ADMIN)
@require_GET
def key_detail(request: HttpRequest, pk: int) -> HttpResponse:
    key = get_object_or_404(ApiKey.objects.select_related("added_by"), pk=pk)
    return render(request, "vault/key_detail.html", key_context(key, GrantForm(key=key)))


def key_context(key: ApiKey, grant_form: GrantForm) -> dict:
    return {
        "key": key,
        "scopes": sorted(key.scopes.items()),
        "grants": key.grants.select_related("member"),
        "grant_form": grant_form,
    }


@role_required(Role.ADMIN)
@require_POST
def key_test(request: HttpRequest, pk: int) -> HttpResponse:
    key = get_object_or_404(ApiKey, pk=pk)
    try:
        keys.do_test_key(request.user, key, request=request)
    except keys.KeyRejected as exc:
        messages.error(request, keys.rejection_text(exc))
    else:
        messages.success(request, _("The key works; its scopes are updated below."))
    return redirect("key-detail", pk=key.pk)


@role_required(Role.ADMIN)
@recent_auth_required
@sensitive_post_parameters("secret")
@require_http_methods(["GET", "POST"])
def key_replace(request: HttpRequest, pk: int) -> HttpResponse:
    key = get_object_or_404(ApiKey, pk=pk)
    form = KeyReplaceForm(request.POST or None)
    rejection = None
    if request.method == "POST" and form.is_valid():
        try:
            keys.do_replace_key(request.user, key, form.cleaned_data["secret"], request=request)
        except keys.KeyRejected as exc:
            rejection = exc
        else:
            messages.success(request, _("New value tested and saved; grants are unchanged."))
            return redirect("key-detail", pk=key.pk)
    status = 400 if (form.errors or rejection) else 200
    context = {"key": key, "form": form, "rejection": rejection}
    return render(request, "vault/key_replace.html", context, status=status)


@role_required(Role.ADMIN)
@recent_auth_required
@require_POST
def key_status(request: HttpRequest, pk: int) -> HttpResponse:
    key = get_object_or_404(ApiKey, pk=pk)
    form = StatusForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Choose to enable or disable the key."))
        return redirect("key-detail", pk=key.pk)
    keys.do_set_status(request.user, key, form.cleaned_data["status"], request=request)
    if key.is_active:
        messages.success(request, _("Key “%(label)s” enabled.") % {"label": key})
    else:
        text = _("Key “%(label)s” disabled; nobody can use it.")
        messages.success(request, text % {"label": key})
    return redirect("key-detail", pk=key.pk)


@role_required(Role.ADMIN)
@recent_auth_required
@require_http_methods(["GET", "POST"])
def key_delete(request: HttpRequest, pk: int) -> HttpResponse:
    key = get_object_or_404(ApiKey, pk=pk)
    form = KeyDeleteForm(request.POST or None, key=key)
    if request.method == "POST" and form.is_valid():
        keys.do_delete_key(request.user, key, request=request)
        messages.success(request, _("Key “%(label)s” deleted.") % {"label": form.key.label})
        return redirect("keys")
    status = 400 if form.errors else 200
    return render(request, "vault/key_delete.html", {"key": key, "form": form}, status=status)


@role_required(Role.ADMIN)
@recent_auth_required
@require_POST
def grant_create(request: HttpRequest, pk: int) -> HttpResponse:
    key = get_object_or_404(ApiKey, pk=pk)
    form = GrantForm(request.POST, key=key)
    if not form.is_valid():
        template = "vault/key_detail.html#grant-form" if request.htmx else "vault/key_detail.html"
        return render(request, template, key_context(key, form), status=400)
    grant = grants.do_create_grant(request.user, key, form, request=request)
    messages.success(
        request,
        _("%(name)s may now use “%(label)s”.")
        % {"name": grant.member.get_username(), "label": key.label},
    )
    if request.htmx:
        # The new grant belongs in the table above the form: reload the whole page.
        return HttpResponseClientRedirect(reverse("key-detail", args=[key.pk]))
    return redirect("key-detail", pk=key.pk)


@role_required(Role.ADMIN)
@recent_auth_required
@require_http_methods(["GET", "POST"])
def grant_edit(request: HttpRequest, pk: int) -> HttpResponse:
    grant = get_object_or_404(KeyGrant.objects.select_related("key", "member"), pk=pk)
    form = GrantForm(request.POST or None, instance=grant, key=grant.key)
    if request.method == "POST" and form.is_valid():
        grants.do_change_grant(request.user, form, request=request)
        messages.success(
            request, _("Grant for %(name)s saved.") % {"name": grant.member.get_username()}
        )
        return redirect("key-detail", pk=grant.key.pk)
    status = 400 if form.errors else 200
    return render(request, "vault/grant_edit.html", {"grant": grant, "form": form}, status=status)


@role_required(Role.ADMIN)
@recent_auth_required
@require_POST
def grant_revoke(request: HttpRequest, pk: int) -> HttpResponse:
    grant = get_object_or_404(KeyGrant.objects.select_related("key", "member"), pk=pk)
    grants.do_revoke_grant(request.user, grant, request=request)
    messages.success(
        request,
        _("%(name)s can no longer use “%(label)s”.")
        % {"name": grant.member.get_username(), "label": grant.key.label},
    )
    return redirect("key-detail", pk=grant.key.pk)
