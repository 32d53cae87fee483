"""The API workbench's pages: the explorer (send any operation of the API's own document) and
the request inspector (every call the console made)."""

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from rivya_dashboard.accounts.models import Role
from rivya_dashboard.accounts.roles import role_required
from rivya_dashboard.rivya.errors import RivyaError
from rivya_dashboard.vault.grants import GrantRefused
from rivya_dashboard.visibility import visible_api_calls, visible_saved_requests
from rivya_dashboard.workbench import copy_as, documents, saved, streaming
from rivya_dashboard.workbench.explorer import (
    ExplorerState,
    explorer_state,
    initial_from_call,
    posted_key_refusal,
    refusal,
    sending_keys,
)
from rivya_dashboard.workbench.explorer_form import OperationForm
from rivya_dashboard.workbench.inspector import CallFilterForm, page_of
from rivya_dashboard.workbench.operation_grants import action_labels, check_operation
from rivya_dashboard.workbench.saved import SaveForm
from rivya_dashboard.workbench.sending import Exchange, do_send, start_exchange

PAGE = "workbench/explorer.html"


def _page(
    request: HttpRequest,
    state: ExplorerState,
    form: OperationForm | None,
    status: int = 200,
    **extra,
) -> HttpResponse:
    context = {"state": state, "form": form, "save_form": SaveForm(), **extra}
    if state.operation is not None:
        context["needs"] = action_labels(state.operation)
        context.setdefault("refusal", refusal(request.user, state.key, state.operation))
    return render(request, PAGE, context, status=status)


@role_required(Role.VIEWER)
@require_GET
def explorer(request: HttpRequest) -> HttpResponse:
    call = None
    if request.GET.get("call", "").isdigit():
        call = get_object_or_404(visible_api_calls(request.user), pk=request.GET["call"])
    key_id = str(call.key_id) if call and call.key_id else request.GET.get("key")
    stored = None
    if request.GET.get("saved", "").isdigit():
        stored = get_object_or_404(visible_saved_requests(request.user), pk=request.GET["saved"])
        key_id = str(stored.key_id)
    operation_id = stored.operation_id if stored else request.GET.get("op")
    state = explorer_state(request.user, key_id, operation_id)
    initial = {"key": str(state.key.pk)} if state.key else {}
    if call is not None:
        state.operation, from_call = initial_from_call(call, state.catalogue)
        initial.update(from_call)
    if stored is not None:
        initial.update(stored.values)
    form = None
    if state.operation is not None:
        form = OperationForm(state.operation, initial=initial, key_choices=state.key_choices)
    return _page(request, state, form, loaded_call=call, loaded_saved=stored)


@role_required(Role.VIEWER)
@require_POST
def explorer_refresh(request: HttpRequest) -> HttpResponse:
    keys = sending_keys(request.user)
    key = next((k for k in keys if str(k.pk) == request.POST.get("key")), None)
    target = reverse("workbench:explorer")
    if key is None:
        messages.error(request, _("Pick a key you hold a grant on to refresh the document."))
        return redirect(target)
    try:
        documents.do_refresh(key, request.user)
    except GrantRefused as exc:
        messages.error(request, str(exc))
    except RivyaError as exc:
        messages.error(
            request,
            _("Could not refresh the API's document: %(error)s Showing the saved copy.")
            % {"error": exc},
        )
    else:
        messages.success(request, _("The API's document was read again."))
    return redirect(f"{target}?key={key.pk}&op={request.POST.get('op', '')}")


@role_required(Role.VIEWER)
@require_POST
def explorer_send(request: HttpRequest) -> HttpResponse:
    key_id = request.POST.get("key", "")
    state = explorer_state(request.user, key_id, request.POST.get("op"))
    if state.operation is None:
        messages.error(
            request, _("That operation is not in the API's document any more; pick another.")
        )
        return redirect("workbench:explorer")
    form = OperationForm(
        state.operation, request.POST, request.FILES, key_choices=state.key_choices
    )
    refused = posted_key_refusal(request.user, key_id, state)
    if refused:
        return _page(request, state, form, status=403, refusal=refused)
    if not form.is_valid() or state.key is None:
        return _page(request, state, form, status=400)
    prepared = form.prepare(state.key.base_url)
    shown = {"snippets": copy_as.snippets(prepared.shape), "previewed": "preview" in request.POST}
    if shown["previewed"]:
        return _page(request, state, form, **shown)
    try:
        action = check_operation(request.user, state.key, state.operation)
    except GrantRefused as exc:
        return _page(request, state, form, status=403, refusal=str(exc), **shown)
    if state.operation.streamed:
        token = streaming.do_park(request.session, state.key, state.operation, prepared, action)
        stream_url = reverse("workbench:stream", args=[token])
        exchange = start_exchange(prepared, state.key)
        return _page(request, state, form, stream_url=stream_url, exchange=exchange, **shown)
    try:
        exchange = do_send(request.user, state.key, state.operation, prepared, action)
    except GrantRefused as exc:
        return _page(request, state, form, status=403, refusal=str(exc), **shown)
    except RivyaError as exc:
        exchange = Exchange(
            method=prepared.shape.method, url=prepared.shape.full_url, error=str(exc)
        )
        return _page(request, state, form, status=502, exchange=exchange, **shown)
    return _page(request, state, form, exchange=exchange, **shown)


@role_required(Role.VIEWER)
@require_GET
def explorer_stream(request: HttpRequest, token: str) -> HttpResponse:
    run = streaming.take(request.session, token)
    key = next((k for k in sending_keys(request.user) if run and k.pk == run["key"]), None)
    if run is None or key is None:
        # 204 tells EventSource not to reconnect: this stream was read already.
        return HttpResponse(status=204)
    response = StreamingHttpResponse(
        streaming.relay(request.user, key, run), content_type="text/event-stream"
    )
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"
    return response


@role_required(Role.VIEWER)
@require_GET
def calls(request: HttpRequest) -> HttpResponse:
    form = CallFilterForm(request.user, request.GET or None)
    rows, next_before = page_of(form.filtered())
    following = request.GET.copy()
    following["before"] = next_before
    context = {
        "form": form,
        "calls": rows,
        "next_url": f"?{following.urlencode()}" if next_before else "",
        "filtered": bool(request.GET),
    }
    status = 400 if form.errors else 200
    template = "workbench/calls.html#call-list" if request.htmx else "workbench/calls.html"
    return render(request, template, context, status=status)


@role_required(Role.VIEWER)
@require_GET
def call_detail(request: HttpRequest, pk: int) -> HttpResponse:
    call = get_object_or_404(visible_api_calls(request.user), pk=pk)
    context = {"call": call, "exchange": call, "ledger_entry": call.ledger_entry}
    return render(request, "workbench/call.html", context)


@role_required(Role.VIEWER)
@require_POST
def save_request(request: HttpRequest) -> HttpResponse:
    key_id = request.POST.get("key", "")
    state = explorer_state(request.user, key_id, request.POST.get("op"))
    form = (
        OperationForm(state.operation, request.POST, key_choices=state.key_choices)
        if state.operation
        else None
    )
    save_form = SaveForm(request.POST)
    if state.operation is None or state.key is None or str(state.key.pk) != key_id:
        refused = _("Pick an operation and a key you hold a grant on to save a request.")
        # A key that exists but is not the member's is refused; a missing choice is bad input.
        status = 403 if key_id.isdigit() and state.operation is not None else 400
        return _page(request, state, form, status=status, refusal=refused, save_form=save_form)
    if not save_form.is_valid():
        return _page(request, state, form, status=400, save_form=save_form, save_open=True)
    kept = saved.do_save(
        request.user, state.key, state.operation.operation_id, save_form, request.POST
    )
    messages.success(
        request,
        _("Saved “%(name)s” in %(collection)s.")
        % {"name": kept.name, "collection": kept.collection},
    )
    return redirect(f"{reverse('workbench:explorer')}?saved={kept.pk}")


@role_required(Role.VIEWER)
@require_GET
def saved_requests(request: HttpRequest) -> HttpResponse:
    rows = list(visible_saved_requests(request.user))
    collections: dict = {}
    for row in rows:
        collections.setdefault(row.collection, []).append(row)
    context = {
        "collections": collections.items(),
        "deletable": {r.pk for r in rows if saved.may_delete(request.user, r)},
    }
    return render(request, "workbench/saved.html", context)


@role_required(Role.VIEWER)
@require_POST
def saved_delete(request: HttpRequest, pk: int) -> HttpResponse:
    row = get_object_or_404(visible_saved_requests(request.user), pk=pk)
    if not saved.may_delete(request.user, row):
        raise PermissionDenied
    saved.do_delete(row)
    messages.success(request, _("Deleted “%(name)s”.") % {"name": row.name})
    return redirect("workbench:saved")
