"""The request inspector: every exchange kept with its request and response, credentials in
display form, bodies cut to the limit; searched under the ledger's visibility rule; pruned."""

import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from rivya_dashboard import outbound
from rivya_dashboard.accounts.models import Role
from rivya_dashboard.console import tasks
from rivya_dashboard.vault.models import KeyGrant, LedgerEntry
from rivya_dashboard.workbench.inspector import do_prune
from rivya_dashboard.workbench.models import ApiCall
from tests.views.test_canary import database_dump
from tests.views.test_generate import catalogue, fast  # noqa: F401 - shared fixtures
from tests.views.test_webhooks import _no_worker_no_dns  # noqa: F401 - offline name lookups
from tests.views.test_workbench_explorer import documented, send  # noqa: F401 - fixture

pytestmark = pytest.mark.django_db
CALLS = reverse("workbench:calls")


@pytest.fixture(autouse=True)
def recorded(api_in_process):
    """The in-process session reports its exchanges, as the outbound module's API sessions do."""
    return outbound._reported(api_in_process)


@pytest.fixture
def operator(clients, members, documented):  # noqa: F811
    KeyGrant.objects.create(
        member=members[Role.OPERATOR], key=documented, actions=["generate", "browse", "chat"]
    )
    return clients[Role.OPERATOR]


def test_an_explorer_call_is_kept_whole_with_who_made_it(operator, documented, members):  # noqa: F811
    send(
        operator,
        documented,
        "createGeneration",
        **{"body.model": "z-image", "body.prompt": "a kite", "header.Idempotency-Key": "kite-9"},
    )
    call = ApiCall.objects.get(operation="createGeneration")
    assert call.member == members[Role.OPERATOR] and call.key == documented
    assert call.status == 202 and call.idempotency_key == "kite-9" and call.model == "z-image"
    assert call.ledger_entry == LedgerEntry.objects.get(operation="generations.create")
    assert ["Authorization", f"Bearer rvya_sk_…{documented.last4}"] in call.request_headers
    assert '"prompt": "a kite"' in call.request_body and call.subject_id.startswith("task_")
    assert call.response_body.startswith('{"id": "task_') and not call.response_truncated
    page = operator.get(reverse("workbench:call", args=[call.pk])).content.decode()
    assert "a kite" in page and call.request_id in page and "Open in explorer" in page


def test_the_raw_key_and_new_secrets_are_stored_only_in_display_form(
    owner_client,
    documented,  # noqa: F811
    sandbox_key,
):
    send(
        owner_client,
        documented,
        "createWebhook",
        **{
            "body.name": "hook",
            "body.url": "https://example.com/hook",
            "body.event_types": ["generation.succeeded"],
        },
    )
    call = ApiCall.objects.get(operation="createWebhook")
    assert call.status == 201, call.response_body and "whsec_…" in call.response_body
    assert sandbox_key not in database_dump()
    # The sandbox's own tables hold the secret as the server must; the console's never do.
    kept = " ".join(str(row) for row in ApiCall.objects.values_list())
    assert not re.search(r"whsec_[A-Za-z0-9_\-]{5,}", kept)


def test_a_body_beyond_the_limit_keeps_its_first_part_and_size(owner_client, documented, settings):  # noqa: F811
    settings.RIVYA_INSPECTOR_BODY_KB = 1
    send(owner_client, documented, "listModels")
    call = ApiCall.objects.get(operation="listModels")
    assert call.response_truncated and len(call.response_body) <= 1024
    assert call.response_size > 1024
    page = owner_client.get(reverse("workbench:call", args=[call.pk])).content.decode()
    assert "Only the first part is shown" in page


def test_a_streamed_answer_is_kept_as_it_was_read(operator, documented):  # noqa: F811
    from tests.views.test_workbench_explorer import open_stream

    _url, stream = open_stream(operator, documented, "hello")
    b"".join(stream.streaming_content)
    call = ApiCall.objects.get(operation="streamChatCompletion")
    assert "event: delta" in call.response_body and "event: done" in call.response_body


def test_a_call_never_breaks_its_page_whatever_its_bytes(owner_client):
    call = ApiCall.objects.create(
        operation="x",
        method="GET",
        url="https://x/\u202e",
        path="/x",
        response_body="\ufffd<script>alert(1)</script>",
        status=200,
        request_headers=[["a", "<b>"]],
    )
    page = owner_client.get(reverse("workbench:call", args=[call.pk]))
    assert page.status_code == 200 and b"<script>alert" not in page.content


def make_call(member, key, **fields):
    defaults = {
        "operation": "getCredits",
        "method": "GET",
        "url": "https://x/credits",
        "status": 200,
    }
    return ApiCall.objects.create(
        member=member,
        member_name=member.get_username() if member else "system",
        key=key,
        key_label=key.label if key else "",
        **{**defaults, **fields},
    )


def listed(client, **filters) -> str:
    response = client.get(CALLS, filters)
    assert response.status_code == 200
    return response.content.decode()


def test_the_list_follows_the_ledger_rule(clients, members, vault_key, settings):
    other = members[Role.ADMIN]
    mine = make_call(members[Role.OPERATOR], vault_key, request_id="req_mine")
    theirs = make_call(other, vault_key, request_id="req_theirs")
    assert "req_theirs" in listed(clients[Role.OWNER]) and "req_mine" in listed(clients[Role.ADMIN])
    operator = listed(clients[Role.OPERATOR])
    assert "req_mine" in operator and "req_theirs" not in operator
    assert "req_mine" not in listed(clients[Role.VIEWER])
    KeyGrant.objects.create(member=members[Role.OPERATOR], key=vault_key, actions=["read_history"])
    assert "req_theirs" in listed(clients[Role.OPERATOR])
    assert clients[Role.VIEWER].get(reverse("workbench:call", args=[theirs.pk])).status_code == 404
    assert clients[Role.OPERATOR].get(reverse("workbench:call", args=[mine.pk])).status_code == 200


def test_every_filter_narrows_the_list(owner_client, members, vault_key):
    owner = members[Role.OWNER]
    make_call(owner, vault_key, request_id="req_ok", operation="getCredits", model="z-image")
    make_call(
        owner,
        vault_key,
        request_id="req_bad",
        status=404,
        operation="getGeneration",
        path="/generations/task_42",
        idempotency_key="idem-7",
    )
    old = make_call(owner, None, request_id="req_old")
    ApiCall.objects.filter(pk=old.pk).update(at=timezone.now() - timedelta(days=3))
    cases = [
        ({"operation": "getGeneration"}, "req_bad"),
        ({"status": "4xx"}, "req_bad"),
        ({"model": "z-image"}, "req_ok"),
        ({"request_id": "req_ok"}, "req_ok"),
        ({"idempotency_key": "idem-7"}, "req_bad"),
        ({"mention": "task_42"}, "req_bad"),
        ({"key": str(vault_key.pk), "status": "2xx"}, "req_ok"),
        (
            {"member": str(owner.pk), "date_to": (timezone.now() - timedelta(days=2)).date()},
            "req_old",
        ),
    ]
    for filters, only in cases:
        page = listed(owner_client, **filters)
        shown = set(re.findall(r"req_(?:ok|bad|old)", page))
        assert shown == {only}, (filters, shown)


def test_a_bad_filter_is_a_clear_400_with_no_rows(owner_client, members, vault_key):
    make_call(members[Role.OWNER], vault_key, request_id="req_x")
    response = owner_client.get(CALLS, {"date_from": "2026-02-02", "date_to": "2026-01-01"})
    assert response.status_code == 400 and b"swap them" in response.content
    assert b"req_x" not in response.content


def test_pages_go_back_by_keyset(owner_client, members, vault_key):
    for number in range(55):
        make_call(members[Role.OWNER], vault_key, request_id=f"req_{number:03d}")
    first = listed(owner_client)
    assert "req_054" in first and "req_004" not in first
    next_url = re.search(r'href="(\?[^"]*before=\d+)"', first).group(1).replace("&amp;", "&")
    second = owner_client.get(CALLS + next_url).content.decode()
    assert "req_004" in second and "req_054" not in second


def test_ledger_rows_and_job_pages_link_to_their_calls(operator, documented, members):  # noqa: F811
    send(operator, documented, "createGeneration", **{"body.model": "z-image", "body.prompt": "p"})
    entry = LedgerEntry.objects.get(operation="generations.create")
    assert f"?entry={entry.pk}" in operator.get(reverse("ledger")).content.decode()
    assert "req_" in listed(operator, entry=entry.pk)
    from rivya_dashboard.console.models import Generation

    job = Generation.objects.get()
    page = operator.get(reverse("generation", args=[job.pk])).content.decode()
    assert f"?mention={job.remote_id}" in page
    assert job.remote_id in listed(operator, mention=job.remote_id)


def test_open_in_explorer_loads_the_call_to_edit_and_send_again(owner_client, documented):  # noqa: F811
    send(owner_client, documented, "getGeneration", **{"path.taskId": "task_zz"})
    send(owner_client, documented, "listModels", **{"query.category": "video"})
    poll = ApiCall.objects.get(operation="getGeneration")
    page = owner_client.get(reverse("workbench:explorer"), {"call": poll.pk}).content.decode()
    assert 'name="path.taskId" value="task_zz"' in page and "Loaded from" in page
    listing = ApiCall.objects.get(operation="listModels")
    page = owner_client.get(reverse("workbench:explorer"), {"call": listing.pk}).content.decode()
    assert '<option value="video" selected>' in page


def test_pruning_keeps_the_retention_and_the_total_size(members, vault_key, settings):
    settings.RIVYA_INSPECTOR_RETENTION_DAYS = 7
    old = make_call(members[Role.OWNER], vault_key)
    ApiCall.objects.filter(pk=old.pk).update(at=timezone.now() - timedelta(days=8))
    for _ in range(5):
        make_call(members[Role.OWNER], vault_key, stored_bytes=400_000)
    settings.RIVYA_INSPECTOR_MAX_MB = 1
    assert do_prune() == 1 + 3
    assert ApiCall.objects.count() == 2
    newest = ApiCall.objects.order_by("-pk").values_list("pk", flat=True)
    assert list(ApiCall.objects.values_list("pk", flat=True).order_by("-pk")) == list(newest[:2])


def test_housekeeping_prunes(members, vault_key, settings):
    settings.RIVYA_INSPECTOR_RETENTION_DAYS = 1
    old = make_call(members[Role.OWNER], vault_key)
    ApiCall.objects.filter(pk=old.pk).update(at=timezone.now() - timedelta(days=2))
    tasks.housekeeping.call()
    assert not ApiCall.objects.filter(pk=old.pk).exists()
