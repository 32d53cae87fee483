"""Every URL pattern of the project has an expected-access entry; the matrix checks each role.

Deny by default: a new URL without an entry below fails `test_every_url_has_an_entry`.
"""

from dataclasses import dataclass, field

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from rivya_dashboard.accounts.models import ROLE_RANK, Role
from tests.conftest import make_member

PUBLIC = "public"  # anyone, signed in or not
API = "api"  # machine endpoints with their own authentication (bearer keys, inbox tokens)
ROLES = [Role.OWNER, Role.ADMIN, Role.OPERATOR, Role.VIEWER]


@dataclass(frozen=True)
class Access:
    minimum: str
    method: str = "GET"
    kwargs: dict = field(default_factory=dict)


ACCESS: dict[str, Access] = {
    "home": Access(Role.VIEWER),
    "healthz": Access(PUBLIC),
    "metrics": Access(PUBLIC),  # its own bearer token decides; off (404) without one
    "setup": Access(PUBLIC),
    "language": Access(PUBLIC, method="POST"),
    "login": Access(PUBLIC),
    "logout": Access(PUBLIC, method="POST"),
    "team": Access(Role.OWNER),
    "invite-create": Access(Role.OWNER, method="POST"),
    "invite-revoke": Access(Role.OWNER, method="POST", kwargs={"pk": 1}),
    "member-role": Access(Role.OWNER, method="POST", kwargs={"pk": "target"}),
    "member-active": Access(Role.OWNER, method="POST", kwargs={"pk": "target"}),
    "invite-accept": Access(PUBLIC, kwargs={"token": "not-a-real-token"}),
    "my-security": Access(Role.VIEWER),
    "totp-enrol": Access(Role.VIEWER),
    "totp-remove": Access(Role.VIEWER, method="POST"),
    "recovery-codes": Access(Role.VIEWER, method="POST"),
    "mfa-verify": Access(Role.VIEWER),
    "reauth-confirm": Access(Role.VIEWER),
    "password-change": Access(Role.VIEWER),
    "passkey-add": Access(Role.VIEWER),
    "passkey-remove": Access(Role.VIEWER, method="POST", kwargs={"pk": 1}),
    "session-end": Access(Role.VIEWER, method="POST", kwargs={"pk": 1}),
    "sessions-end-others": Access(Role.VIEWER, method="POST"),
    "member-sign-out": Access(Role.ADMIN, method="POST", kwargs={"pk": "target"}),
    "security": Access(Role.ADMIN),
    "security-policy": Access(Role.OWNER, method="POST"),
    "member-mfa-reset": Access(Role.OWNER, method="POST", kwargs={"pk": "target"}),
    "audit": Access(Role.ADMIN),
    "audit-export": Access(Role.ADMIN),
    "sandbox-control": Access(Role.ADMIN),
    "sandbox-top-up": Access(Role.ADMIN, method="POST", kwargs={"pk": 1}),
    "sandbox-key-create": Access(Role.ADMIN, method="POST"),
    "sandbox-key-revoke": Access(Role.ADMIN, method="POST", kwargs={"pk": 1}),
    "sandbox-behaviour": Access(Role.ADMIN, method="POST"),
    "sandbox-faults": Access(Role.ADMIN, method="POST"),
    "sandbox-webhook-settings": Access(Role.ADMIN, method="POST"),
    "keys": Access(Role.VIEWER),
    "key-add": Access(Role.ADMIN),
    "key-sandbox": Access(Role.ADMIN, method="POST"),
    "key-detail": Access(Role.ADMIN, kwargs={"pk": 1}),
    "key-test": Access(Role.ADMIN, method="POST", kwargs={"pk": 1}),
    "key-replace": Access(Role.ADMIN, kwargs={"pk": 1}),
    "key-status": Access(Role.ADMIN, method="POST", kwargs={"pk": 1}),
    "key-delete": Access(Role.ADMIN, kwargs={"pk": 1}),
    "grant-create": Access(Role.ADMIN, method="POST", kwargs={"pk": 1}),
    "grant-edit": Access(Role.ADMIN, kwargs={"pk": 1}),
    "grant-revoke": Access(Role.ADMIN, method="POST", kwargs={"pk": 1}),
    "ledger": Access(Role.VIEWER),
    "ledger-export": Access(Role.VIEWER),
    # Reading a chat follows the visibility rule; starting or continuing one takes an operator.
    "chat": Access(Role.VIEWER),
    "chat-new": Access(Role.OPERATOR, method="POST"),
    "chat-remote": Access(Role.OPERATOR),
    "chat-remote-continue": Access(Role.OPERATOR, method="POST"),
    "chat-session": Access(Role.VIEWER, kwargs={"pk": 1}),
    "chat-send": Access(Role.OPERATOR, method="POST", kwargs={"pk": 1}),
    "chat-export": Access(Role.VIEWER, kwargs={"pk": 1, "fmt": "md"}),
    "chat-turn": Access(Role.VIEWER, kwargs={"pk": 1}),
    "chat-turn-stream": Access(Role.VIEWER, kwargs={"pk": 1}),
    "chat-turn-stop": Access(Role.OPERATOR, method="POST", kwargs={"pk": 1}),
    "chat-turn-regenerate": Access(Role.OPERATOR, method="POST", kwargs={"pk": 1}),
    "models": Access(Role.VIEWER),
    "models-refresh": Access(Role.OPERATOR, method="POST"),
    "model-detail": Access(Role.VIEWER, kwargs={"model_id": "z-image"}),
    "generate": Access(Role.OPERATOR),
    "generate-submit": Access(Role.OPERATOR, method="POST"),
    "generate-estimate": Access(Role.OPERATOR),
    "generate-upload": Access(Role.OPERATOR, method="POST"),
    "side-by-side": Access(Role.OPERATOR),
    "history": Access(Role.VIEWER),
    "gallery": Access(Role.VIEWER),
    "generation": Access(Role.VIEWER, kwargs={"pk": 1}),
    "generation-status": Access(Role.VIEWER, kwargs={"pk": 1}),
    "generation-row": Access(Role.VIEWER, kwargs={"pk": 1}),
    "generation-rerun": Access(Role.OPERATOR, method="POST", kwargs={"pk": 1}),
    "generation-delete": Access(Role.OPERATOR, method="POST", kwargs={"pk": 1}),
    "generation-output": Access(Role.VIEWER, kwargs={"pk": 1, "position": 0}),
    "files": Access(Role.VIEWER),
    "file-upload": Access(Role.OPERATOR, method="POST"),
    "file-detail": Access(Role.VIEWER, kwargs={"pk": 1}),
    "credits": Access(Role.VIEWER),
    # Reading a balance is "Browse models and credits", which a viewer's grant may hold.
    "credits-refresh": Access(Role.VIEWER, method="POST", kwargs={"pk": 1}),
    "credits-alert": Access(Role.ADMIN, method="POST", kwargs={"pk": 1}),
    "usage": Access(Role.VIEWER),
    "usage-export": Access(Role.VIEWER),
    "webhooks": Access(Role.ADMIN),
    "webhook-create": Access(Role.ADMIN, kwargs={"key_pk": 1}),
    # The delivery log is read-only: members holding "Manage webhooks" on the key read it.
    "webhook-deliveries": Access(Role.OPERATOR, kwargs={"key_pk": 1}),
    "webhook-events": Access(Role.ADMIN, kwargs={"key_pk": 1}),
    "webhook-detail": Access(Role.ADMIN, kwargs={"key_pk": 1, "endpoint_id": "whend_x"}),
    "webhook-edit": Access(
        Role.ADMIN, method="POST", kwargs={"key_pk": 1, "endpoint_id": "whend_x"}
    ),
    "webhook-status": Access(
        Role.ADMIN, method="POST", kwargs={"key_pk": 1, "endpoint_id": "whend_x"}
    ),
    "webhook-rotate": Access(
        Role.ADMIN, method="POST", kwargs={"key_pk": 1, "endpoint_id": "whend_x"}
    ),
    "webhook-delete": Access(Role.ADMIN, kwargs={"key_pk": 1, "endpoint_id": "whend_x"}),
    "webhook-test": Access(
        Role.ADMIN, method="POST", kwargs={"key_pk": 1, "endpoint_id": "whend_x"}
    ),
    "webhook-alert-ack": Access(Role.ADMIN, method="POST", kwargs={"pk": 1}),
    "inbox": Access(Role.OPERATOR),
    "inbox-create": Access(Role.ADMIN, method="POST"),
    "inbox-detail": Access(Role.OPERATOR, kwargs={"pk": 1}),
    "inbox-settings": Access(Role.ADMIN, method="POST", kwargs={"pk": 1}),
    "inbox-secret": Access(Role.ADMIN, method="POST", kwargs={"pk": 1}),
    "inbox-delete": Access(Role.ADMIN, method="POST", kwargs={"pk": 1}),
    "inbox-doctor": Access(Role.OPERATOR, kwargs={"pk": 1}),
    "inbox-bulk-replay": Access(Role.OPERATOR, kwargs={"pk": 1}),
    "inbox-request": Access(Role.OPERATOR, kwargs={"pk": 1}),
    "inbox-replay": Access(Role.OPERATOR, method="POST", kwargs={"pk": 1}),
    # The token is the inbox's credential: anyone may knock, an unknown token gets 404.
    "inbox-receive": Access(PUBLIC, method="POST", kwargs={"token": "not-a-real-token"}),
    # Every member reads the API's operations; what a send may do is the key grant's to decide.
    "workbench:explorer": Access(Role.VIEWER),
    "workbench:refresh": Access(Role.VIEWER, method="POST"),
    "workbench:send": Access(Role.VIEWER, method="POST"),
    "workbench:stream": Access(Role.VIEWER, kwargs={"token": "not-a-real-token"}),
    "workbench:calls": Access(Role.VIEWER),
    "workbench:call": Access(Role.VIEWER, kwargs={"pk": 1}),
    "workbench:saved": Access(Role.VIEWER),
    "workbench:save": Access(Role.VIEWER, method="POST"),
    "workbench:saved-delete": Access(Role.VIEWER, method="POST", kwargs={"pk": 1}),
}

# URL namespaces whose every pattern shares one rule.
NAMESPACE_ACCESS: dict[str, str] = {"sandbox-api": API}


def walk(resolver: URLResolver, namespace: str = "") -> list[tuple[str, object]]:
    found = []
    for entry in resolver.url_patterns:
        if isinstance(entry, URLResolver):
            inner = f"{namespace}{entry.namespace}:" if entry.namespace else namespace
            found.extend(walk(entry, inner))
        elif isinstance(entry, URLPattern):
            found.append((f"{namespace}{entry.name or ''}", entry))
    return found


def all_url_names() -> list[str]:
    return [name for name, _ in walk(get_resolver())]


def expected_rule(name: str) -> str | None:
    if name in ACCESS:
        return ACCESS[name].minimum
    namespace = name.split(":", 1)[0] if ":" in name else ""
    return NAMESPACE_ACCESS.get(namespace)


def test_every_url_has_an_entry():
    missing = [name for name in all_url_names() if expected_rule(name) is None]
    assert not missing, f"URL patterns without an expected-access entry: {missing}"


def test_every_view_is_named():
    unnamed = [name for name in all_url_names() if name.endswith(":") or not name]
    assert not unnamed


def url_for(name: str, access: Access, members) -> str:
    kwargs = {
        key: (members[value].pk if value in members else value)
        for key, value in access.kwargs.items()
    }
    return reverse(name, kwargs=kwargs)


def allowed(role: str, minimum: str) -> bool:
    return minimum == PUBLIC or ROLE_RANK[Role(role)] >= ROLE_RANK[Role(minimum)]


@pytest.mark.django_db
@pytest.mark.parametrize("name", sorted(ACCESS))
def test_role_matrix(name, clients, members):
    access = ACCESS[name]
    # Actions aim at a bystander, so an allowed role's request cannot sign out the next role.
    target = make_member(Role.VIEWER, "target")
    url = url_for(name, access, {**members, "target": target})
    for who, client in clients.items():
        response = getattr(client, access.method.lower())(url)
        if who == "outsider":
            if access.minimum == PUBLIC:
                assert response.status_code < 500, (name, who, response.status_code)
            else:
                assert response.status_code == 302, (name, who, response.status_code)
                assert response["Location"].startswith(reverse("login")), (name, who)
            continue
        if allowed(who, access.minimum):
            assert response.status_code not in (401, 403), (name, who, response.status_code)
            assert response.status_code < 500, (name, who, response.status_code)
        else:
            assert response.status_code == 403, (name, who, response.status_code)
            assert b"have access" in response.content
