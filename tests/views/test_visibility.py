"""One visibility rule (rivya_dashboard/visibility.py), checked on every page that shows records.

Two operators, alpha and beta, each work on their own key. Each made one record of every kind,
marked with their name. Every page, htmx fragment, CSV export and download is then opened as each
kind of member, and must show exactly the records the rule gives that member.
"""

from dataclasses import dataclass
from decimal import Decimal

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape

from rivya_dashboard import visibility
from rivya_dashboard.accounts.models import Role, User
from rivya_dashboard.chat.models import ChatSession, ChatTurn
from rivya_dashboard.console import media_cache
from rivya_dashboard.console.files import pickable_files
from rivya_dashboard.console.models import Generation, Output, Status, UploadedFile
from rivya_dashboard.vault.models import Action, ApiKey, KeyGrant, LedgerEntry
from rivya_dashboard.webhooks.models import Inbox, InboxRequest, Verdict
from rivya_dashboard.workbench.models import ApiCall
from tests.conftest import make_member

pytestmark = pytest.mark.django_db
SIDES = ("alpha", "beta")
OPERATOR_ACTIONS = ["browse", "generate", "upload", "chat", "manage_webhooks"]


@dataclass
class Records:
    generation: Generation
    upload: UploadedFile
    chat: ChatSession
    turn: ChatTurn
    inbox: Inbox
    request: InboxRequest


@dataclass
class Team:
    keys: dict[str, ApiKey]
    records: dict[str, Records]


def make_records(side: str, member: User, key: ApiKey) -> Records:
    generation = Generation.objects.create(
        member=member,
        member_name=member.username,
        key=key,
        key_label=key.label,
        model_id=f"model-of-{side}",
        prompt=f"prompt-of-{side}",
        idempotency_key=f"idem-{side}",
        status=Status.SUCCEEDED,
        final_credits=Decimal(3),
    )
    cached = f"output-of-{side}.png"
    media_cache.cache_dir().mkdir(parents=True, exist_ok=True)
    (media_cache.cache_dir() / cached).write_bytes(f"pixels-of-{side}".encode())
    Output.objects.create(
        generation=generation,
        position=0,
        original_url=f"https://cdn.example.test/{cached}",
        cached_name=cached,
        content_type="image/png",
    )
    upload = UploadedFile.objects.create(
        remote_id=f"file_{side}",
        key=key,
        key_label=key.label,
        uploader=member,
        uploader_name=member.username,
        kind="image",
        name=f"file-of-{side}.png",
        url=f"https://cdn.example.test/file-of-{side}.png",
    )
    LedgerEntry.objects.create(
        member=member,
        member_name=member.username,
        key=key,
        key_label=key.label,
        operation="generations.create",
        model=f"model-of-{side}",
        http_status=200,
        request_id=f"ledger-of-{side}",
        credits_final=Decimal(3),
    )
    chat = ChatSession.objects.create(
        created_by=member,
        api_key=key,
        key_label=key.label,
        model="chat-model",
        title=f"chat-of-{side}",
    )
    turn = ChatTurn.objects.create(
        session=chat,
        created_by=member,
        message=f"message-of-{side}",
        model="chat-model",
        status=ChatTurn.Status.DONE,
        reply=f"reply-of-{side}",
    )
    ApiCall.objects.create(
        member=member,
        member_name=member.username,
        key=key,
        key_label=key.label,
        operation="getCredits",
        method="GET",
        url="https://rivya.ai/api/v1/credits",
        status=200,
        request_id=f"call-of-{side}",
    )
    inbox = Inbox.objects.create(name=f"inbox-of-{side}", key=key)
    request = InboxRequest.objects.create(
        inbox=inbox,
        method="POST",
        headers={"content-type": "application/json"},
        body=f'{{"body": "body-of-{side}"}}'.encode(),
        body_text=f'{{"body": "body-of-{side}"}}',
        event_type="generation.succeeded",
        verdict=Verdict.UNVERIFIED,
        response_status=200,
    )
    return Records(generation, upload, chat, turn, inbox, request)


@pytest.fixture
def team(members) -> Team:
    keys, records = {}, {}
    for side in SIDES:
        operator = make_member(Role.OPERATOR, f"op_{side}")
        key = ApiKey.objects.create(
            label=f"Key {side}", base_url="https://rivya.ai/api/v1", last4=side[:4]
        )
        KeyGrant.objects.create(member=operator, key=key, actions=OPERATOR_ACTIONS)
        keys[side] = key
        records[side] = make_records(side, operator, key)
    return Team(keys, records)


# Who looks, how they get their grants, and which side's records the rule shows them.
VISITORS: dict[str, set[str]] = {
    "owner": {"alpha", "beta"},
    "admin": {"alpha", "beta"},
    "operator": {"alpha"},
    "operator reading beta": {"alpha", "beta"},
    "viewer": set(),
    "viewer reading beta": {"beta"},
}


def visitor(name: str, team: Team, members) -> User:
    if name in ("owner", "admin"):
        return members[Role(name)]
    if name.startswith("operator"):
        member = User.objects.get(username="op_alpha")
    else:
        member = members[Role.VIEWER]
    if name == "operator reading beta":
        KeyGrant.objects.create(member=member, key=team.keys["beta"], actions=["read_history"])
    if name == "viewer reading beta":
        KeyGrant.objects.create(
            member=member, key=team.keys["beta"], actions=["browse", "read_history"]
        )
    return member


def client_for(member: User) -> Client:
    client = Client()
    client.force_login(member)
    return client


def body(response) -> str:
    if response.streaming:
        return b"".join(response.streaming_content).decode()
    return response.content.decode()


HTMX = {"HTTP_HX_REQUEST": "true"}
# Pages that list records: (url name, query, headers, marker kind) — the marker's side shows iff
# the rule shows that side's record.
LISTS = [
    ("history", {}, {}, "prompt"),
    ("history", {}, HTMX, "prompt"),
    ("gallery", {}, {}, "model"),
    ("gallery", {}, HTMX, "model"),
    ("files", {}, {}, "file"),
    ("chat", {}, {}, "chat"),
    ("ledger", {}, {}, "ledger"),
    ("ledger", {}, HTMX, "ledger"),
    ("ledger-export", {}, {}, "ledger"),
    ("usage", {"by": "model"}, {}, "model"),
    ("usage", {"by": "model"}, HTMX, "model"),
    ("usage-export", {}, {}, "ledger"),
    ("workbench:calls", {}, {}, "call"),
    ("workbench:calls", {}, HTMX, "call"),
]


@pytest.mark.parametrize("who", sorted(VISITORS))
@pytest.mark.parametrize(("name", "query", "headers", "kind"), LISTS)
def test_every_list_shows_what_the_rule_shows(team, members, who, name, query, headers, kind):
    client = client_for(visitor(who, team, members))
    response = client.get(reverse(name), query, **headers)
    assert response.status_code == 200
    page = body(response)
    for side in SIDES:
        shown = f"{kind}-of-{side}" in page
        assert shown == (side in VISITORS[who]), (name, headers, who, side)


def detail_urls(team: Team, side: str) -> list[str]:
    records = team.records[side]
    generation = records.generation
    return [
        reverse("generation", args=[generation.pk]),
        reverse("generation-row", args=[generation.pk]),
        reverse("generation-output", args=[generation.pk, 0]),
        reverse("file-detail", args=[records.upload.pk]),
        reverse("chat-session", args=[records.chat.pk]),
        reverse("chat-export", args=[records.chat.pk, "md"]),
        reverse("chat-export", args=[records.chat.pk, "json"]),
        reverse("chat-turn", args=[records.turn.pk]),
        reverse("chat-turn-stream", args=[records.turn.pk]),
    ]


@pytest.mark.parametrize("who", sorted(VISITORS))
def test_every_record_page_and_download_opens_only_for_those_who_see_it(team, members, who):
    client = client_for(visitor(who, team, members))
    for side in SIDES:
        for url in detail_urls(team, side):
            for headers in ({}, HTMX):
                response = client.get(url, **headers)
                # A turn's own URL sends a browser (not htmx) to the turn in its chat.
                expected = {200, 302} if side in VISITORS[who] else {404}
                assert response.status_code in expected, (url, headers, who, side)
                if response.status_code == 200 and "outputs" in url:
                    assert body(response) == f"pixels-of-{side}"
                if response.status_code == 200 and ("export" in url or "turns/" in url):
                    assert f"reply-of-{side}" in body(response)


@pytest.mark.parametrize("who", sorted(VISITORS))
def test_the_home_page_counts_only_visible_calls(team, members, who):
    response = client_for(visitor(who, team, members)).get(reverse("home"))
    assert response.context["glance"].team_today.calls == len(VISITORS[who])


def test_an_operator_without_read_history_cannot_filter_others_rows_in(team, members):
    """A filter naming the other operator's model answers as if there were no such rows."""
    client = client_for(visitor("operator", team, members))
    usage = client.get(reverse("usage"), {"model": "model-of-beta"})
    assert usage.status_code == 400 and "ledger-of-beta" not in body(usage)
    beta = User.objects.get(username="op_beta")
    ledger = client.get(reverse("ledger"), {"member": beta.pk})
    assert ledger.status_code == 400 and "ledger-of-beta" not in body(ledger)


def test_a_rerun_or_delete_of_an_invisible_job_is_a_404(team, members):
    client = client_for(visitor("operator", team, members))
    beta = team.records["beta"].generation
    assert client.post(reverse("generation-rerun", args=[beta.pk])).status_code == 404
    assert client.post(reverse("generation-delete", args=[beta.pk])).status_code == 404
    assert Generation.objects.filter(pk=beta.pk).exists()


def test_an_expired_read_history_grant_opens_nothing(team, members):
    operator = visitor("operator", team, members)
    KeyGrant.objects.create(
        member=operator,
        key=team.keys["beta"],
        actions=["read_history"],
        expires_at=timezone.now() - timezone.timedelta(minutes=1),
    )
    shown = set(visibility.visible_generations(operator).values_list("prompt", flat=True))
    assert shown == {"prompt-of-alpha"}


def test_a_deactivated_member_sees_nothing(team, members):
    operator = visitor("operator reading beta", team, members)
    operator.is_active = False
    operator.save()
    assert not visibility.visible_generations(operator).exists()
    assert not visibility.visible_ledger_rows(operator).exists()


def test_a_viewer_demoted_from_operator_no_longer_sees_their_own_jobs(team):
    member = User.objects.get(username="op_alpha")
    member.role = Role.VIEWER
    member.save()
    assert not visibility.visible_generations(member).exists()
    assert not visibility.visible_files(member).exists()


def test_the_team_page_shows_each_role_described_from_the_rule(members):
    page = client_for(members[Role.OWNER]).get(reverse("team"))
    shown = page.context["role_descriptions"]
    assert [d.role for d in shown] == list(visibility.RULE)
    html = body(page)
    for role in visibility.RULE:
        described = visibility.describe(role)
        for line in (described.duty, *described.sees):
            assert escape(line) in html, line
    assert escape("With no grant, sees the model catalogue only.") in html


def side_of(marked: str) -> str:
    """ "output-of-alpha.png" -> "alpha"."""
    return marked.rsplit("-of-", 1)[1].split(".")[0]


def sides_seen(member: User) -> dict[str, set[str]]:
    """Which sides' records of each kind the rule's functions show the member."""
    return {
        "jobs": {side_of(g.prompt) for g in visibility.visible_generations(member)},
        "outputs": {side_of(o.cached_name) for o in visibility.visible_outputs(member)},
        "files": {side_of(f.name) for f in visibility.visible_files(member)},
        "chats": {side_of(c.title) for c in visibility.visible_chat_sessions(member)},
        "turns": {side_of(t.message) for t in visibility.visible_chat_turns(member)},
        "ledger": {side_of(e.request_id) for e in visibility.visible_ledger_rows(member)},
        "usage": {side_of(e.request_id) for e in visibility.visible_usage(member)},
        "inboxes": {side_of(i.name) for i in visibility.visible_inboxes(member)},
        "requests": {side_of(r.inbox.name) for r in visibility.visible_inbox_requests(member)},
        "deliveries": {k.label.split()[1] for k in visibility.visible_delivery_keys(member)},
    }


KEY_KINDS = ("jobs", "outputs", "files", "chats", "turns", "ledger", "usage")
WEBHOOK_KINDS = ("inboxes", "requests", "deliveries")


@pytest.mark.parametrize("role", list(visibility.RULE))
def test_each_role_description_says_what_the_functions_decide(team, role):
    """Every sentence the Team page says about a role is checked against what the role sees:
    alone, then with its own records on key alpha, then with a grant holding every action on
    key beta (written directly, as a grant kept from an earlier role would be)."""
    text = " ".join(visibility.describe(role).sees)
    member = make_member(role, f"probe_{role}")
    alone = sides_seen(member)
    if text.startswith("Sees everything"):
        assert all(alone[kind] == {"alpha", "beta"} for kind in KEY_KINDS + WEBHOOK_KINDS)
        return
    if "catalogue only" in text:
        assert all(not seen for seen in alone.values())
    make_records("own", member, team.keys["alpha"])
    own = sides_seen(member)
    assert all(("own" in own[kind]) == ("Sees their own" in text) for kind in KEY_KINDS)
    KeyGrant.objects.create(member=member, key=team.keys["beta"], actions=list(Action.values))
    granted = sides_seen(member)
    assert all("beta" in granted[kind] for kind in KEY_KINDS), "“Read history” opens the key"
    assert all("alpha" not in granted[kind] for kind in KEY_KINDS + WEBHOOK_KINDS)
    webhooks = "Never sees webhook inboxes" not in text
    assert all(("beta" in granted[kind]) == webhooks for kind in WEBHOOK_KINDS)


# Inboxes, their requests and a key's deliveries follow "Manage webhooks", not "Read history":
# alpha's operator holds it on key alpha only, and no viewer's grant may hold it.
INBOX_VISITORS: dict[str, set[str]] = {
    "owner": {"alpha", "beta"},
    "admin": {"alpha", "beta"},
    "operator": {"alpha"},
    "operator reading beta": {"alpha"},
    "viewer": set(),
    "viewer reading beta": set(),
}


def inbox_urls(team: Team, side: str) -> list[tuple[str, str, dict]]:
    records = team.records[side]
    inbox, row = records.inbox.pk, records.request.pk
    return [
        ("get", reverse("inbox-detail", args=[inbox]), {}),
        ("get", reverse("inbox-detail", args=[inbox]), HTMX),
        ("get", reverse("inbox-request", args=[row]), {}),
        ("get", reverse("inbox-request", args=[row]), HTMX),
        ("get", reverse("inbox-doctor", args=[inbox]), {}),
        ("post", reverse("inbox-doctor", args=[inbox]), {}),
        ("get", reverse("inbox-bulk-replay", args=[inbox]), {}),
        ("post", reverse("inbox-bulk-replay", args=[inbox]), {}),
        ("post", reverse("inbox-replay", args=[row]), {}),
    ]


@pytest.mark.parametrize("who", sorted(INBOX_VISITORS))
def test_inboxes_requests_replay_and_doctor_follow_the_webhooks_action(team, members, who):
    member = visitor(who, team, members)
    client = client_for(member)
    if not member.has_role(Role.OPERATOR):
        # A viewer's grant never holds "Manage webhooks": the inbox pages refuse them outright.
        assert client.get(reverse("inbox")).status_code == 403
        for side in SIDES:
            for method, url, headers in inbox_urls(team, side):
                assert getattr(client, method)(url, **headers).status_code == 403
        return
    listing = body(client.get(reverse("inbox")))
    for side in SIDES:
        visible = side in INBOX_VISITORS[who]
        assert (f"inbox-of-{side}" in listing) == visible, (who, side)
        for method, url, headers in inbox_urls(team, side):
            # Empty posts: a visible target answers with the form's message, never a 404.
            response = getattr(client, method)(url, **headers)
            assert (response.status_code != 404) == visible, (method, url, headers, who, side)
            assert response.status_code < 500
            if visible and "requests" in url and method == "get" and not headers:
                assert f"body-of-{side}" in body(response)


def test_only_those_who_see_an_inbox_get_its_receiver_url(team, members):
    operator = visitor("operator reading beta", team, members)
    client = client_for(operator)
    alpha, beta = team.records["alpha"].inbox, team.records["beta"].inbox
    assert alpha.token in body(client.get(reverse("inbox-detail", args=[alpha.pk])))
    assert visibility.may_see_receiver(operator, alpha)
    assert not visibility.may_see_receiver(operator, beta)
    for url in (reverse("inbox"), reverse("generation", args=[team.records["beta"].generation.pk])):
        assert beta.token not in body(client.get(url))


def test_a_job_finished_by_a_webhook_links_its_event_only_for_those_who_see_the_inbox(
    team, members
):
    records = team.records["beta"]
    records.request.generation = records.generation
    records.request.event_id = "evt_of_beta"
    records.request.generation_applied_at = timezone.now()
    records.request.save()
    url = reverse("generation", args=[records.generation.pk])
    reader = body(client_for(visitor("operator reading beta", team, members)).get(url))
    assert "Updated by a verified webhook." in reader
    assert "evt_of_beta" not in reader and "inbox-of-beta" not in reader
    admin = body(client_for(members[Role.ADMIN]).get(url))
    assert "evt_of_beta" in admin and reverse("inbox-request", args=[records.request.pk]) in admin


def test_a_keys_delivery_log_opens_only_with_the_webhooks_action(team, members, vault_key):
    operator = visitor("operator", team, members)
    client = client_for(operator)
    assert client.get(reverse("webhook-deliveries", args=[team.keys["beta"].pk])).status_code == 404
    KeyGrant.objects.create(member=operator, key=vault_key, actions=["manage_webhooks"])
    response = client.get(reverse("webhook-deliveries", args=[vault_key.pk]))
    assert response.status_code == 200 and "Team sandbox" in body(response)
    viewer = visitor("viewer reading beta", team, members)
    KeyGrant.objects.create(member=viewer, key=vault_key, actions=["manage_webhooks"])
    assert not visibility.visible_delivery_keys(viewer).exists()


def test_a_chat_read_by_the_rule_offers_no_composer_stop_or_regenerate(team, members):
    records = team.records["beta"]
    for who in ("operator reading beta", "viewer reading beta"):
        client = client_for(visitor(who, team, members))
        page = body(client.get(reverse("chat-session", args=[records.chat.pk])))
        assert "reply-of-beta" in page and 'data-testid="chat-read-only"' in page
        assert 'id="composer"' not in page
        assert reverse("chat-turn-regenerate", args=[records.turn.pk]) not in page
        for name in ("chat-turn-stop", "chat-turn-regenerate"):
            assert client.post(reverse(name, args=[records.turn.pk])).status_code in (403, 404)
        assert client.post(reverse("chat-send", args=[records.chat.pk])).status_code in (403, 404)
    own = body(
        client_for(User.objects.get(username="op_beta")).get(
            reverse("chat-session", args=[records.chat.pk])
        )
    )
    assert 'id="composer"' in own and 'data-testid="chat-read-only"' not in own


def test_the_generate_forms_file_picker_offers_only_visible_uploads(team, members):
    """Generating on key beta does not show alpha's operator the uploads of beta's operator."""
    operator = visitor("operator", team, members)
    KeyGrant.objects.create(member=operator, key=team.keys["beta"], actions=["generate"])
    assert pickable_files(operator, team.keys["beta"], ["image"]) == []
    KeyGrant.objects.filter(member=operator, key=team.keys["beta"]).update(
        actions=["generate", "read_history"]
    )
    picked = pickable_files(operator, team.keys["beta"], ["image"])
    assert [upload.name for upload in picked] == ["file-of-beta.png"]
