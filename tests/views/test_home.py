"""The dashboard home: balance, today's spend, running jobs, failures, and the first-steps list."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from rivya_dashboard.accounts.models import Role
from rivya_dashboard.console.first_steps import first_steps
from rivya_dashboard.console.models import BalanceReading, Generation, Status, UploadedFile
from rivya_dashboard.vault.models import LedgerEntry

pytestmark = pytest.mark.django_db


def steps(user) -> dict[str, bool]:
    return {step.label: step.done for step in first_steps(user)}


def test_a_new_team_sees_the_safe_first_path_with_what_to_do(clients, members):
    response = clients[Role.OWNER].get(reverse("home"))
    html = response.content.decode()
    assert response.context["checklist_left"] == 7  # four members: invited already
    assert "Use the sandbox" in html and "idempotency key" in html
    assert "Add a key, or use the sandbox, to see the balance here." in html
    assert "Nothing running." in html and "No failed generation" in html


def test_each_step_ticks_itself_from_the_data(members, vault_key):
    owner = members[Role.OWNER]
    now = timezone.now()
    common = {"member": owner, "member_name": "owner", "key": vault_key, "model_id": "flux"}
    ok = {"http_status": 200, "key": vault_key, "member": owner}
    LedgerEntry.objects.create(operation="credits.get", at=now - timedelta(minutes=5), **ok)
    job = Generation.objects.create(
        **common, idempotency_key="i", created_at=now - timedelta(minutes=4)
    )
    assert steps(owner)["Submit one generation"] is True
    assert steps(owner)["Watch its status to the end"] is False
    job.status, job.finished_at = Status.SUCCEEDED, now - timedelta(minutes=3)
    job.save()
    assert steps(owner)["Watch its status to the end"] is True
    assert steps(owner)["Compare credits before and after"] is False
    LedgerEntry.objects.create(operation="credits.get", at=now - timedelta(minutes=1), **ok)
    assert steps(owner)["Compare credits before and after"] is True
    UploadedFile.objects.create(
        remote_id="file_1",
        key=vault_key,
        key_label="k",
        uploader_name="owner",
        kind="image",
        name="a.png",
        url="https://example.com/a.png",
    )
    LedgerEntry.objects.create(operation="chat.stream", **ok)
    assert steps(owner)["Add a webhook endpoint"] is False
    LedgerEntry.objects.create(operation="webhooks.create", http_status=500, key=vault_key)
    assert steps(owner)["Add a webhook endpoint"] is False
    LedgerEntry.objects.create(operation="webhooks.create", **ok)
    done = steps(owner)
    assert done.pop("Invite a teammate") is True  # the members fixture made four
    assert all(done.values()), done


def test_the_finished_list_hides_and_the_glance_shows_figures(clients, members, vault_key):
    owner = members[Role.OWNER]
    BalanceReading.objects.create(key=vault_key, credits=Decimal(750))
    LedgerEntry.objects.create(member=owner, member_name="owner", operation="x", credits_final=3)
    LedgerEntry.objects.create(member_name="bob", operation="x", credits_final=4)
    LedgerEntry.objects.create(
        member_name="bob", operation="x", credits_final=50, at=timezone.now() - timedelta(days=2)
    )
    response = clients[Role.OWNER].get(reverse("home"))
    glance = response.context["glance"]
    assert glance.total_balance == 750
    assert glance.team_today.credits == 7 and glance.mine_today.credits == 3
    html = response.content.decode()
    assert "750" in html and "3 by you" in html


def test_running_and_failed_jobs_are_listed(clients, members, vault_key):
    common = {"member": members[Role.OPERATOR], "member_name": "operator", "key": vault_key}
    Generation.objects.create(**common, model_id="runner", idempotency_key="r")
    Generation.objects.create(
        **common,
        model_id="breaker",
        idempotency_key="f",
        status=Status.FAILED,
        error_code="provider_failed",
    )
    html = clients[Role.ADMIN].get(reverse("home")).content.decode()
    assert "runner" in html and "breaker" in html and "provider_failed" in html


def test_a_viewer_gets_no_write_buttons(clients):
    html = clients[Role.VIEWER].get(reverse("home")).content.decode()
    assert "Use the sandbox" not in html
    assert reverse("generate") + '"' not in html.split("quick-links", 1)[1].split("</nav>", 1)[0]
    assert "Once an admin adds a key" in html
