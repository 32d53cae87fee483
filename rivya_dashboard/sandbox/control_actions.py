"""What the sandbox control page changes; every change writes an audit row without key material.

Keys are named in audit rows by their display prefix only, which the sandbox itself shows
everywhere; the raw key exists only in the one response that displays it.
"""

from typing import Any

from django.db import transaction
from django.http import HttpRequest

from rivya_dashboard.accounts.audit import record
from rivya_dashboard.accounts.models import User
from rivya_dashboard.sandbox import faults
from rivya_dashboard.sandbox.credits import top_up
from rivya_dashboard.sandbox.keys import find_key, issue_key
from rivya_dashboard.sandbox.models import Account, SandboxKey, SandboxSettings, WebhookSettings


@transaction.atomic
def do_top_up(actor: User, account: Account, amount: int, request: HttpRequest) -> None:
    top_up(account, amount)
    record(actor, "sandbox.account_topped_up", account.name, request=request, amount=amount)


@transaction.atomic
def do_create_key(
    actor: User,
    *,
    name: str,
    account: Account | None,
    credits: int,
    scopes: list[str],
    request: HttpRequest,
) -> tuple[SandboxKey, str]:
    raw_key = issue_key(scopes=scopes, credits=credits, account=account, name=name)
    key = find_key(raw_key)
    assert key is not None
    record(
        actor,
        "sandbox.key_created",
        key.prefix,
        request=request,
        account=key.account.name,
        scopes=scopes,
    )
    return key, raw_key


@transaction.atomic
def do_revoke_key(actor: User, key: SandboxKey, request: HttpRequest) -> None:
    if key.status == SandboxKey.Status.REVOKED:
        return
    key.status = SandboxKey.Status.REVOKED
    key.save(update_fields=["status"])
    record(actor, "sandbox.key_revoked", key.prefix, request=request)


def changed_fields(form: Any) -> dict[str, Any]:
    return {name: form.cleaned_data[name] for name in form.changed_data}


@transaction.atomic
def do_update_behaviour(actor: User, form: Any, request: HttpRequest) -> None:
    sandbox: SandboxSettings = form.save(commit=False)
    sandbox.failure_rate = form.cleaned_data["failure_percent"] / 100
    sandbox.save()
    record(actor, "sandbox.settings_changed", "sandbox", request=request, **changed_fields(form))


@transaction.atomic
def do_set_faults(
    actor: User, key: SandboxKey | None, fault_set: dict[str, Any], request: HttpRequest
) -> None:
    if key is None:
        faults.set_global_faults(fault_set)
    else:
        faults.set_key_faults(key, fault_set)
    target = key.prefix if key else "global"
    record(actor, "sandbox.faults_changed", target, request=request, faults=fault_set)


@transaction.atomic
def do_update_webhook_settings(actor: User, form: Any, request: HttpRequest) -> WebhookSettings:
    webhook_settings = form.save()
    record(
        actor,
        "sandbox.webhook_settings_changed",
        "sandbox",
        request=request,
        **changed_fields(form),
    )
    return webhook_settings
