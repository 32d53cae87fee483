"""The Ledger page: every API call made through the console that the member may see, with CSV."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from rivya_dashboard import visibility
from rivya_dashboard.accounts.models import Role
from rivya_dashboard.accounts.roles import role_required
from rivya_dashboard.csv_export import csv_download
from rivya_dashboard.vault.forms import LedgerFilterForm, ledger_csv_rows


def ledger_form(request: HttpRequest) -> LedgerFilterForm:
    return LedgerFilterForm(visibility.visible_ledger_rows(request.user), request.GET or None)


@role_required(Role.VIEWER)
@require_GET
def ledger_page(request: HttpRequest) -> HttpResponse:
    form = ledger_form(request)
    entries = form.filtered()
    context = {"form": form, "entries": entries[:200], "total": entries.count()}
    status = 400 if form.errors else 200
    template = "vault/ledger.html#ledger-table" if request.htmx else "vault/ledger.html"
    return render(request, template, context, status=status)


@role_required(Role.VIEWER)
@require_GET
def ledger_export(request: HttpRequest) -> HttpResponse:
    form = ledger_form(request)
    if form.errors:
        context = {"form": form, "entries": [], "total": 0}
        return render(request, "vault/ledger.html", context, status=400)
    stamp = timezone.now().strftime("%Y%m%d")
    return csv_download(ledger_csv_rows(form.filtered()), f"rivya-ledger-{stamp}.csv")
