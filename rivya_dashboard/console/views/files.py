"""The Files page: uploads streamed through to the Files API, the list, and one file's page."""

from django import forms
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_GET, require_POST

from rivya_dashboard import visibility
from rivya_dashboard.accounts.models import Role, User
from rivya_dashboard.accounts.roles import role_required
from rivya_dashboard.console import files
from rivya_dashboard.console.models import CatalogueModel
from rivya_dashboard.console.schema_form import MEDIA_KINDS
from rivya_dashboard.console.upload_relay import BrokenRelay, csrf_checked_before_body
from rivya_dashboard.rivya.errors import RivyaError
from rivya_dashboard.vault.grants import GrantRefused, usable_keys
from rivya_dashboard.vault.models import Action


class UploadForm(forms.Form):
    key = forms.ChoiceField(label=gettext_lazy("API key"))
    kind = forms.ChoiceField(
        label=gettext_lazy("Kind"), choices=[(kind, kind) for kind in MEDIA_KINDS]
    )
    model = forms.ChoiceField(
        label=gettext_lazy("For model"),
        required=False,
        help_text=gettext_lazy("Rivya then applies that model's own size and type limits."),
    )
    upload = forms.FileField(label=gettext_lazy("File"))

    def __init__(self, user: User, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.keys = {str(key.pk): key for key in usable_keys(user, Action.UPLOAD)}
        self.fields["key"].choices = [(pk, key.label) for pk, key in self.keys.items()]
        models = CatalogueModel.objects.filter(api_status="available").exclude(category="chat")
        self.models = {model.model_id: model for model in models}
        self.fields["model"].choices = [("", _("Any model"))] + [
            (model.model_id, model.display_name)
            for model in self.models.values()
            if model.data.get("file_kinds")
        ]


def _page(
    request: HttpRequest, form: UploadForm, status: int = 200, error: str = ""
) -> HttpResponse:
    listing = visibility.visible_files(request.user).select_related("uploader")
    context = {
        "form": form,
        "page": Paginator(listing, 50).get_page(request.GET.get("page")),
        "upload_error": error,
        "limits": {kind: files.human_size(files.kind_limit(kind)) for kind in MEDIA_KINDS},
        "limit_bytes": {kind: files.kind_limit(kind) for kind in MEDIA_KINDS},
    }
    template = "console/files.html#upload-region" if request.htmx else "console/files.html"
    return render(request, template, context, status=status)


@role_required(Role.VIEWER)
@require_GET
def files_page(request: HttpRequest) -> HttpResponse:
    form = UploadForm(request.user) if request.user.has_role(Role.OPERATOR) else None
    return _page(request, form)


@role_required(Role.OPERATOR)
@require_POST
@csrf_exempt
def file_upload(request: HttpRequest) -> HttpResponse:
    """Check the declared size before reading a byte, then stream to a capped temporary file.

    CSRF is checked inside, once the capped handler is in place (see generate_upload)."""
    kind = request.GET.get("kind", "")
    model = CatalogueModel.objects.filter(model_id=request.GET.get("model", "")).first()
    model_data = model.data if model else None
    size = request.GET.get("size", "")
    if size.isdigit() and request.GET.get("key"):
        return _relay(request, kind, int(size), model_data)
    limit = files.kind_limit(kind, model_data) if kind in MEDIA_KINDS else files.largest_limit()
    try:
        handler = files.prepare_upload(request, limit)
    except files.UploadTooLarge as exc:
        return _page(request, UploadForm(request.user), status=413, error=str(exc))
    if not files.read_body(request, handler):
        return HttpResponse(_("The upload was cut short; choose the file again."), status=400)
    return _relay_upload(request, handler)


def _relay(request: HttpRequest, kind: str, size: int, model: dict | None) -> HttpResponse:
    """The browser announced the file's size: relay the body to the API while it arrives."""
    form = UploadForm(request.user)
    key = form.keys.get(request.GET["key"])
    if key is None or kind not in MEDIA_KINDS:
        return _page(request, form, 400, _("Pick a key and a kind, then choose the file again."))
    if not csrf_checked_before_body(request):
        raise PermissionDenied
    try:
        uploaded = files.do_relay(request, key, kind=kind, size=size, model=model)
    except files.UploadTooLarge as exc:
        return _page(request, form, status=413, error=str(exc))
    except (GrantRefused, RivyaError) as exc:
        return _page(request, form, status=400, error=files.refusal_text(exc))
    except BrokenRelay:
        return _page(request, form, 400, _("The upload was cut short; choose the file again."))
    if request.htmx:
        return _page(request, form)
    return redirect("file-detail", pk=uploaded.pk)


@csrf_protect
def _relay_upload(request: HttpRequest, handler: files.CappedUploadHandler) -> HttpResponse:
    form = UploadForm(request.user, request.POST, request.FILES)
    if handler.too_large:
        error = str(files.UploadTooLarge(handler.limit))
        return _page(request, UploadForm(request.user, initial=request.POST), 413, error)
    if not form.is_valid():
        return _page(request, form, status=400)
    model = form.models.get(form.cleaned_data["model"])
    try:
        uploaded = files.do_upload(
            request.user,
            form.keys[form.cleaned_data["key"]],
            form.cleaned_data["upload"],
            kind=form.cleaned_data["kind"],
            model=model.data if model else None,
        )
    except files.UploadTooLarge as exc:
        return _page(request, form, status=413, error=str(exc))
    except (GrantRefused, RivyaError) as exc:
        return _page(request, form, status=400, error=files.refusal_text(exc))
    if request.htmx:
        return _page(request, UploadForm(request.user), error="")
    return redirect("file-detail", pk=uploaded.pk)


@role_required(Role.VIEWER)
@require_GET
def file_detail(request: HttpRequest, pk: int) -> HttpResponse:
    upload = get_object_or_404(visibility.visible_files(request.user), pk=pk)
    return render(request, "console/file_detail.html", {"file": upload})
