"""The Usage page: spend and calls by day, member, key, model, operation and status, with CSV."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from rivya_dashboard import visibility
from rivya_dashboard.accounts.models import Role
from rivya_dashboard.accounts.roles import role_required
from rivya_dashboard.console import usage
from rivya_dashboard.csv_export import csv_download
from rivya_dashboard.vault.forms import ledger_csv_rows


def usage_form(request: HttpRequest) -> usage.UsageFilterForm:
    return usage.usage_form(request.GET.dict(), visibility.visible_usage(request.user))


@role_required(Role.VIEWER)
@require_GET
def usage_page(request: HttpRequest) -> HttpResponse:
    form = usage_form(request)
    valid = form.is_valid()
    jobs = visibility.visible_generations(request.user)
    context = {"form": form, **(usage.report(form, jobs) if valid else {})}
    template = "console/usage.html#usage" if request.htmx else "console/usage.html"
    return render(request, template, context, status=200 if valid else 400)


@role_required(Role.VIEWER)
@require_GET
def usage_export(request: HttpRequest) -> HttpResponse:
    form = usage_form(request)
    if not form.is_valid():
        return render(request, "console/usage.html", {"form": form}, status=400)
    stamp = timezone.now().strftime("%Y%m%d")
    entries = form.drilled() if form.cleaned_data.get("bucket") else form.filtered()
    return csv_download(ledger_csv_rows(entries), f"rivya-usage-{stamp}.csv")
