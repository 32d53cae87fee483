"""The model catalogue and one model's page."""

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_GET, require_POST

from rivya_dashboard.accounts.models import Role
from rivya_dashboard.accounts.roles import role_required
from rivya_dashboard.console import models_catalog
from rivya_dashboard.console.models import CatalogueModel, CatalogueSync
from rivya_dashboard.console.schema_form import (
    prompt_limit,
    reference_rules,
    schema_params,
)
from rivya_dashboard.console.tasks import ensure_housekeeping
from rivya_dashboard.rivya.errors import RivyaError
from rivya_dashboard.vault.grants import GrantRefused, usable_keys
from rivya_dashboard.vault.models import Action


@role_required(Role.VIEWER)
@require_GET
def catalogue(request: HttpRequest) -> HttpResponse:
    # The periodic refresh rides on the housekeeping chain; a fresh install has none yet.
    ensure_housekeeping()
    every_model = list(CatalogueModel.objects.all())
    filters = models_catalog.CatalogueFilterForm(every_model, request.GET or None)
    context = {
        "filters": filters,
        "models": filters.matching(),
        "sync": CatalogueSync.current(),
        "total": len(every_model),
        "can_generate": request.user.has_role(Role.OPERATOR),
    }
    template = "console/models.html#model-list" if request.htmx else "console/models.html"
    return render(request, template, context)


@role_required(Role.OPERATOR)
@require_POST
def catalogue_refresh(request: HttpRequest) -> HttpResponse:
    keys = usable_keys(request.user, Action.BROWSE)
    if not keys:
        messages.error(request, _("You have no key to browse with; ask an admin for a grant."))
        return redirect("models")
    try:
        count = models_catalog.do_refresh(keys[0], request.user)
    except GrantRefused as exc:
        messages.error(request, str(exc))
    except RivyaError as exc:
        messages.error(
            request,
            _("Could not refresh the catalogue: %(error)s Showing the saved copy.")
            % {"error": exc},
        )
    else:
        messages.success(
            request,
            ngettext(
                "Catalogue refreshed: %(count)s model.",
                "Catalogue refreshed: %(count)s models.",
                count,
            )
            % {"count": count},
        )
    return redirect("models")


@role_required(Role.VIEWER)
@require_GET
def model_detail(request: HttpRequest, model_id: str) -> HttpResponse:
    model = get_object_or_404(CatalogueModel, model_id=model_id)
    context = {
        "model": model,
        "data": model.data,
        "params": schema_params(model.data),
        "prompt_limit": prompt_limit(model.data),
        "reference": reference_rules(model.data),
        "can_generate": request.user.has_role(Role.OPERATOR) and model.is_available,
    }
    return render(request, "console/model_detail.html", context)
