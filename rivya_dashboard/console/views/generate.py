"""The generate page: a model's schema as a form, its price, and an idempotent submit."""

from decimal import Decimal

from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_GET, require_POST

from rivya_dashboard import visibility
from rivya_dashboard.accounts.models import Role
from rivya_dashboard.accounts.roles import role_required
from rivya_dashboard.console import credits, generate_form, generations
from rivya_dashboard.console.files import (
    CappedUploadHandler,
    UploadTooLarge,
    do_upload,
    kind_limit,
    prepare_upload,
    read_body,
    refusal_text,
)
from rivya_dashboard.console.generate_form import Choice
from rivya_dashboard.console.schema_form import GenerationForm, reference_rules
from rivya_dashboard.rivya.errors import RivyaError
from rivya_dashboard.vault import ledger
from rivya_dashboard.vault.grants import GrantRefused
from rivya_dashboard.vault.models import Action


def _page(
    request: HttpRequest,
    choice: Choice,
    form: GenerationForm | None,
    status: int = 200,
    refusal: str = "",
) -> HttpResponse:
    context = {"choice": choice, "form": form, "refusal": refusal}
    if choice.model is not None:
        context["reference"] = reference_rules(choice.model.data)
    template = "console/generate.html#generate-form" if request.htmx else "console/generate.html"
    return render(request, template, context, status=status)


@role_required(Role.OPERATOR)
@require_GET
def generate(request: HttpRequest) -> HttpResponse:
    source = None
    if request.GET.get("from", "").isdigit():
        visible = visibility.visible_generations(request.user)
        source = get_object_or_404(visible, pk=request.GET["from"])
    model_id = source.model_id if source else request.GET.get("model")
    key_id = source.key_id if source else request.GET.get("key")
    choice = generate_form.choose(request.user, model_id, str(key_id or ""))
    refusal = generate_form.key_refusal(request.user, str(key_id or ""), choice)
    if refusal:
        # Say why the asked-for key cannot be used, and offer the member's first key instead.
        choice = generate_form.choose(request.user, model_id, None)
    form = None
    if choice.model is not None and choice.key is not None:
        form = generate_form.build_form(choice, initial=generate_form.initial_for(choice, source))
    return _page(request, choice, form, refusal=refusal)


@role_required(Role.OPERATOR)
@require_POST
def generate_submit(request: HttpRequest) -> HttpResponse:
    key_id = request.POST.get("key", "")
    choice = generate_form.choose(request.user, request.POST.get("model"), key_id)
    if choice.model is None:
        return _page(request, choice, None, status=400)
    refusal = generate_form.key_refusal(request.user, key_id, choice)
    if not choice.keys:
        return _page(request, choice, None, status=403, refusal=refusal)
    form = generate_form.build_form(choice, data=request.POST)
    if refusal:
        form.add_error(None, refusal)
        return _page(request, choice, form, status=403)
    if choice.model.model_id != request.POST.get("model"):
        # The model left the catalogue (or is not available) since the form was rendered.
        form.add_error(None, _("This model cannot be run now; pick another one."))
        return _page(request, choice, form, status=400)
    if not form.is_valid():
        return _page(request, choice, form, status=400)
    try:
        generation = generations.do_submit(
            request.user,
            choice.key,
            choice.model.data,
            nonce=form.cleaned_data["nonce"],
            prompt=form.cleaned_data["prompt"],
            params=form.params(),
            reference_file_ids=form.cleaned_data.get("reference_files") or [],
        )
    except GrantRefused as exc:
        form.add_error(None, str(exc))
        return _page(request, choice, form, status=403)
    except RivyaError as exc:
        generate_form.attach_error(form, exc)
        if not generate_form.keeps_nonce(exc):
            form.data = form.data.copy()
            form.data["nonce"] = generate_form.new_nonce()
        return _page(request, choice, form, status=400 if (exc.status or 500) < 500 else 502)
    return redirect("generation", pk=generation.pk)


@role_required(Role.OPERATOR)
@require_GET
def generate_estimate(request: HttpRequest) -> HttpResponse:
    choice = generate_form.choose(request.user, request.GET.get("model"), request.GET.get("key"))
    context = {"choice": choice, "estimate": None, "balance": None, "balance_error": ""}
    if choice.model is not None and choice.key is not None:
        context["estimate"] = generations.estimate_credits(choice.model.data, {})
        try:
            client = choice.key.client()
            with ledger.recording(
                request.user, choice.key, "credits.get", action=Action.BROWSE, client=client
            ):
                balance = client.get_credits().get("current_credits")
            context["balance"] = Decimal(str(balance)) if balance is not None else None
        except (GrantRefused, RivyaError) as exc:
            context["balance_error"] = str(exc)
    if context["balance"] is not None and context["estimate"] is not None:
        context["after"] = context["balance"] - context["estimate"]
    if choice.key is not None:
        context["caps"] = credits.own_caps(request.user, choice.key)
    return render(request, "console/generate.html#cost", context)


@role_required(Role.OPERATOR)
@require_POST
@csrf_exempt
def generate_upload(request: HttpRequest) -> HttpResponse:
    """Inline upload from the generate form; answers the reference picker with the file picked.

    CSRF is checked inside, once the capped upload handler is in place: the middleware would
    otherwise read the body with the default handlers first.
    """
    choice = generate_form.choose(request.user, request.GET.get("model"), request.GET.get("key"))
    kind = request.GET.get("kind", "")
    if choice.model is None or choice.key is None:
        return HttpResponse(status=400)
    if kind not in reference_rules(choice.model.data)["kinds"]:
        return HttpResponse(status=400)
    try:
        handler = prepare_upload(request, kind_limit(kind, choice.model.data))
    except UploadTooLarge as exc:
        return _picker(request, choice, [], str(exc), status=413)
    if not read_body(request, handler):
        return HttpResponse(_("The upload was cut short; choose the file again."), status=400)
    return _relay_inline_upload(request, choice, kind, handler)


@csrf_protect
def _relay_inline_upload(
    request: HttpRequest, choice: Choice, kind: str, handler: CappedUploadHandler
) -> HttpResponse:
    picked = request.POST.getlist("reference_files")
    received = request.FILES.get("upload")
    try:
        if handler.too_large:
            raise UploadTooLarge(handler.limit)
        if received is None:
            return _picker(request, choice, picked, _("Choose a file to upload first."), 400)
        uploaded = do_upload(request.user, choice.key, received, kind=kind, model=choice.model.data)
    except UploadTooLarge as exc:
        return _picker(request, choice, picked, str(exc), status=413)
    except (GrantRefused, RivyaError) as exc:
        return _picker(request, choice, picked, refusal_text(exc), status=400)
    return _picker(request, choice, [*picked, str(uploaded.pk)], "", status=200)


def _picker(
    request: HttpRequest, choice: Choice, picked: list[str], error: str, status: int
) -> HttpResponse:
    initial = {"reference_files": picked, "key": str(choice.key.pk)}
    form = generate_form.build_form(choice, initial=initial)
    context = {
        "choice": choice,
        "form": form,
        "reference": reference_rules(choice.model.data),
        "upload_error": error,
    }
    return render(request, "console/generate.html#reference-picker", context, status=status)
