"""History, gallery, one job's page, its cached media, run again, delete, and side by side."""

import json
import uuid

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseStopPolling

from rivya_dashboard import visibility
from rivya_dashboard.accounts.models import Role
from rivya_dashboard.accounts.roles import role_required
from rivya_dashboard.console import (
    compare,
    generate_form,
    generations,
    history,
    media_cache,
    status_card,
)
from rivya_dashboard.console.models import Generation
from rivya_dashboard.rivya.errors import RivyaError
from rivya_dashboard.vault.grants import GrantRefused


def _visible_job(request: HttpRequest, pk: int) -> Generation:
    visible = visibility.visible_generations(request.user).select_related("key")
    return get_object_or_404(visible, pk=pk)


@role_required(Role.VIEWER)
@require_GET
def history_page(request: HttpRequest) -> HttpResponse:
    visible = visibility.visible_generations(request.user)
    filters = history.HistoryFilterForm(visible, request.GET or None)
    jobs = history.with_uncached_flag(filters.apply(visible))
    page = Paginator(jobs, history.PAGE_SIZE).get_page(request.GET.get("page"))
    context = {
        "filters": filters,
        "page": page,
        "query": _query_without_page(request),
        "can_run": request.user.has_role(Role.OPERATOR),
    }
    template = "console/history.html#job-list" if request.htmx else "console/history.html"
    return render(request, template, context)


def _query_without_page(request: HttpRequest) -> str:
    query = request.GET.copy()
    query.pop("page", None)
    return query.urlencode()


@role_required(Role.VIEWER)
@require_GET
def gallery(request: HttpRequest) -> HttpResponse:
    visible = visibility.visible_generations(request.user)
    filters = history.HistoryFilterForm(visible, request.GET or None)
    outputs = history.gallery_outputs(request.user, filters.apply(visible))
    page = Paginator(outputs, history.GALLERY_PAGE_SIZE).get_page(request.GET.get("page"))
    context = {"filters": filters, "page": page, "query": _query_without_page(request)}
    template = "console/gallery.html#tiles" if request.htmx else "console/gallery.html"
    return render(request, template, context)


@role_required(Role.VIEWER)
@require_GET
def job(request: HttpRequest, pk: int) -> HttpResponse:
    generation = _visible_job(request, pk)
    context = {
        **status_card.status_context(generation, request.user),
        "curl": history.as_curl(generation),
        "params_json": json.dumps(generation.params, indent=2, ensure_ascii=False)
        if generation.params
        else "",
        "can_delete": history.can_delete(request.user, generation),
        "rerun_nonce": generate_form.new_nonce(),
        "can_run": request.user.has_role(Role.OPERATOR),
    }
    return render(request, "console/generation.html", context)


@role_required(Role.VIEWER)
@require_GET
def job_status(request: HttpRequest, pk: int) -> HttpResponse:
    """The status card alone, which the job page polls; at the end htmx is told to stop."""
    generation = _visible_job(request, pk)
    # Only a page that saw the job running polls: a terminal answer here is news to announce.
    context = {**status_card.status_context(generation, request.user), "announce": True}
    if not generation.is_terminal:
        return render(request, "console/generation.html#job-status", context)
    html = render_to_string("console/generation.html#job-status", context, request=request)
    return HttpResponseStopPolling(html)


@role_required(Role.VIEWER)
@require_GET
def job_row(request: HttpRequest, pk: int) -> HttpResponse:
    visible = history.with_uncached_flag(visibility.visible_generations(request.user))
    context = {"job": get_object_or_404(visible, pk=pk)}
    return render(request, "console/history.html#job-row", context)


@role_required(Role.VIEWER)
@require_GET
def output_media(request: HttpRequest, pk: int, position: int) -> FileResponse:
    """The cached copy, to members who can see the job; never a public media URL."""
    output = get_object_or_404(
        visibility.visible_outputs(request.user), generation=pk, position=position
    )
    path = media_cache.cached_path(output)
    if path is None or not path.is_file():
        raise Http404(_("This output is not cached; open the original link."))
    response = FileResponse(path.open("rb"), content_type=output.content_type)
    # A remote file opened on its own (an SVG, say) must not run anything in our origin.
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response["Content-Disposition"] = f'inline; filename="{path.name}"'
    return response


@role_required(Role.OPERATOR)
@require_POST
def job_rerun(request: HttpRequest, pk: int) -> HttpResponse:
    source = _visible_job(request, pk)
    choice = generate_form.choose(request.user, source.model_id, str(source.key_id or "-"))
    # choose() falls back to the first model when the job's left the catalogue: never run another.
    if choice.key is None or choice.model is None or choice.model.model_id != source.model_id:
        messages.error(request, _("This model or key is no longer available to you."))
        return redirect("generation", pk=pk)
    try:
        generation = generations.do_submit(
            request.user,
            choice.key,
            choice.model.data,
            nonce=request.POST.get("nonce") or generate_form.new_nonce(),
            prompt=source.prompt,
            params={k: v for k, v in source.params.items() if k != "referenceMediaItems"},
            reference_file_ids=source.reference_file_ids,
        )
    except (GrantRefused, RivyaError) as exc:
        text = generate_form.error_message(exc) if isinstance(exc, RivyaError) else str(exc)
        messages.error(request, text)
        return redirect("generation", pk=pk)
    return redirect("generation", pk=generation.pk)


@role_required(Role.OPERATOR)
@require_POST
def job_delete(request: HttpRequest, pk: int) -> HttpResponse:
    generation = _visible_job(request, pk)
    if not history.can_delete(request.user, generation):
        raise PermissionDenied
    generations.do_delete(generation)
    messages.success(request, _("Job removed from the console's history with its cached files."))
    return redirect("history")


@role_required(Role.OPERATOR)
@require_http_methods(["GET", "POST"])
def side_by_side(request: HttpRequest) -> HttpResponse:
    form = compare.CompareForm(request.user, request.POST or None, initial=compare.initial())
    if request.method == "POST" and form.is_valid():
        batch, failures = compare.do_submit_all(request.user, form)
        for failure in failures:
            messages.error(request, failure)
        return redirect(f"{request.path}?batch={batch}")
    batch = request.GET.get("batch", "")
    jobs = []
    if _is_uuid(batch):
        visible = visibility.visible_generations(request.user)
        jobs = list(visible.filter(batch=batch).order_by("id"))
    status = 400 if form.errors else 200
    context = {"form": form, "jobs": jobs, "total": compare.batch_total(jobs)}
    return render(request, "console/compare.html", context, status=status)


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True
