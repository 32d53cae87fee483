"""Who sees what: one function per kind of record, answering "which of these may member M see".

Every page, htmx fragment, CSV export, download, replay and doctor asks here instead of
filtering by hand, and the Team page describes each role from the same `RULE`:

- owners and admins see everything;
- operators see their own records, plus every record on a key where their grant holds
  "Read history";
- viewers have no records of their own: a read-only grant holding "Read history" on a key shows
  them what an operator with that action sees on that key; with no grant they see the catalogue
  and nothing else;
- inboxes, their requests and a key's webhook deliveries are for owners, admins and members whose
  grant on the key holds "Manage webhooks"; so is an inbox's receiver URL, whose token is the
  inbox's credential.

A new kind of record with a member column and a key column (the workbench's stored API calls, say)
is one more function returning `by_member_or_key(Model.objects.all(), member, "member", "key")`.
"""

from dataclasses import dataclass

from django.db.models import Q, QuerySet
from django.utils.functional import Promise
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from rivya_dashboard.accounts.models import Role, User
from rivya_dashboard.chat.models import ChatSession, ChatTurn
from rivya_dashboard.console.models import Generation, Output, UploadedFile
from rivya_dashboard.vault.grants import granted_key_ids
from rivya_dashboard.vault.models import READ_ONLY_ACTIONS, Action, ApiKey, KeyGrant, LedgerEntry
from rivya_dashboard.webhooks.models import Inbox, InboxRequest
from rivya_dashboard.workbench.models import ApiCall, SavedRequest

# The grant action that opens a key's records, and the one that opens its webhook traffic.
HISTORY_ACTION = Action.READ_HISTORY
WEBHOOKS_ACTION = Action.MANAGE_WEBHOOKS


@dataclass(frozen=True)
class Sight:
    """What one role sees."""

    # Every record of every kind, whoever made it and whatever key it used.
    everything: bool
    # The records the member made themselves.
    own: bool
    # The actions a grant of this role may hold; a grant opens a key's records through them.
    grantable: tuple[str, ...]


RULE: dict[str, Sight] = {
    Role.OWNER: Sight(everything=True, own=True, grantable=()),
    Role.ADMIN: Sight(everything=True, own=True, grantable=()),
    Role.OPERATOR: Sight(everything=False, own=True, grantable=tuple(Action.values)),
    Role.VIEWER: Sight(everything=False, own=False, grantable=READ_ONLY_ACTIONS),
}
BLIND = Sight(everything=False, own=False, grantable=())


def sight_of(member: User) -> Sight:
    """A deactivated member, or one without a known role, sees nothing."""
    if not member.is_authenticated or not member.is_active:
        return BLIND
    return RULE.get(member.role, BLIND)


def opened_key_ids(member: User, action: str) -> list[int]:
    if action not in sight_of(member).grantable:
        return []
    return granted_key_ids(member, action)


def by_member_or_key(
    records: QuerySet, member: User, member_field: str, key_field: str
) -> QuerySet:
    """The rule for every kind of record made by a member through a key."""
    sight = sight_of(member)
    if sight.everything:
        return records
    shown = Q(**{f"{key_field}__in": opened_key_ids(member, HISTORY_ACTION)})
    if sight.own:
        shown |= Q(**{member_field: member})
    return records.filter(shown)


def own_records(records: QuerySet, member: User, member_field: str) -> QuerySet:
    """The records a member made themselves, which only they may continue (a chat, say); every
    role that has records of its own sees them, so no grant needs reading."""
    if not sight_of(member).own:
        return records.none()
    return records.filter(**{member_field: member})


def visible_generations(member: User) -> QuerySet[Generation]:
    return by_member_or_key(Generation.objects.all(), member, "member", "key")


def visible_outputs(member: User) -> QuerySet[Output]:
    return Output.objects.filter(generation__in=visible_generations(member))


def visible_files(member: User) -> QuerySet[UploadedFile]:
    return by_member_or_key(UploadedFile.objects.all(), member, "uploader", "key")


def visible_chat_sessions(member: User) -> QuerySet[ChatSession]:
    return by_member_or_key(ChatSession.objects.all(), member, "created_by", "api_key")


def visible_chat_turns(member: User) -> QuerySet[ChatTurn]:
    return ChatTurn.objects.filter(session__in=visible_chat_sessions(member))


def own_chat_sessions(member: User) -> QuerySet[ChatSession]:
    return own_records(ChatSession.objects.all(), member, "created_by")


def own_chat_turns(member: User) -> QuerySet[ChatTurn]:
    return own_records(ChatTurn.objects.all(), member, "created_by")


def visible_ledger_rows(member: User) -> QuerySet[LedgerEntry]:
    return by_member_or_key(LedgerEntry.objects.all(), member, "member", "key")


def visible_api_calls(member: User) -> QuerySet[ApiCall]:
    """The request inspector's stored exchanges: the ledger's rule, row for row."""
    return by_member_or_key(ApiCall.objects.all(), member, "member", "key")


def visible_saved_requests(member: User) -> QuerySet[SavedRequest]:
    """Saved requests follow their key: owners and admins see all, others those on keys they
    hold a grant for (whatever it allows; sending is checked again)."""
    sight = sight_of(member)
    requests = SavedRequest.objects.select_related("collection")
    if sight.everything:
        return requests
    granted = KeyGrant.objects.filter(member=member).values_list("key_id", flat=True)
    return requests.filter(key__in=granted)


def visible_usage(member: User) -> QuerySet[LedgerEntry]:
    """The base of every usage figure (charts, breakdowns, totals, exports): the ledger rows the
    member may see, so no sum counts a call its rows would hide."""
    return visible_ledger_rows(member)


def webhook_key_ids(member: User) -> list[int] | None:
    """Keys whose webhook traffic the member sees; None means every key."""
    if sight_of(member).everything:
        return None
    return opened_key_ids(member, WEBHOOKS_ACTION)


def visible_inboxes(member: User) -> QuerySet[Inbox]:
    keys = webhook_key_ids(member)
    return Inbox.objects.all() if keys is None else Inbox.objects.filter(key__in=keys)


def visible_inbox_requests(member: User) -> QuerySet[InboxRequest]:
    return InboxRequest.objects.filter(inbox__in=visible_inboxes(member))


def may_see_receiver(member: User, inbox: Inbox) -> bool:
    """Whether the page may show the inbox's receiver URL, whose token lets anyone post to it."""
    return visible_inboxes(member).filter(pk=inbox.pk).exists()


def visible_delivery_keys(member: User) -> QuerySet[ApiKey]:
    """Keys whose webhook endpoints' delivery logs the member may read."""
    keys = webhook_key_ids(member)
    return ApiKey.objects.all() if keys is None else ApiKey.objects.filter(pk__in=keys)


def visible_balance_keys(member: User) -> QuerySet[ApiKey]:
    """Keys whose balance and balance history the member sees: "Browse models and credits"."""
    if sight_of(member).everything:
        return ApiKey.objects.all()
    return ApiKey.objects.filter(pk__in=opened_key_ids(member, Action.BROWSE))


def visible_grants(member: User) -> QuerySet[KeyGrant]:
    """Grants with their caps: every grant for those who see everything, else their own."""
    if sight_of(member).everything:
        return KeyGrant.objects.all()
    return KeyGrant.objects.filter(member=member) if member.is_active else KeyGrant.objects.none()


# How the Team page names what a key's records are; the functions above list them.
KEY_RECORDS: Promise = gettext_lazy(
    "jobs and their outputs, files, chats, ledger rows and usage figures"
)
WEBHOOK_RECORDS: Promise = gettext_lazy(
    "webhook inboxes (with their requests and receiver URLs) and deliveries"
)
DUTIES: dict[str, Promise] = {
    Role.OWNER: gettext_lazy("Manages the team, and everything an admin manages."),
    Role.ADMIN: gettext_lazy("Manages keys, grants, webhooks, inboxes and the sandbox."),
    Role.OPERATOR: gettext_lazy("Uses the keys granted to them: generates, uploads and chats."),
    Role.VIEWER: gettext_lazy("Reads only: a viewer's grant holds read-only actions."),
}


@dataclass(frozen=True)
class RoleDescription:
    role: str
    label: str
    duty: str
    sees: list[str]


def describe(role: str) -> RoleDescription:
    """The Team page's text for a role, generated from its `Sight`."""
    sight = RULE[role]
    words = {
        "records": KEY_RECORDS,
        "webhooks": WEBHOOK_RECORDS,
        "history": Action(HISTORY_ACTION).label,
        "manage": Action(WEBHOOKS_ACTION).label,
        "browse": Action(Action.BROWSE).label,
    }
    if sight.everything:
        sees = [_("Sees everything: every member's %(records)s, and all %(webhooks)s.") % words]
        return RoleDescription(role, Role(role).label, str(DUTIES[role]), sees)
    if sight.own:
        sees = [
            _(
                "Sees their own %(records)s, and everyone's on a key where their grant holds "
                "“%(history)s”."
            )
            % words
        ]
    else:
        sees = [
            _("With no grant, sees the model catalogue only."),
            _(
                "A grant holding “%(history)s” on a key shows everyone's %(records)s on that "
                "key, as an operator with that action sees them."
            )
            % words,
        ]
    sees.append(_("Sees the balance of a key where their grant holds “%(browse)s”.") % words)
    if WEBHOOKS_ACTION in sight.grantable:
        sees.append(_("Sees %(webhooks)s of a key where their grant holds “%(manage)s”.") % words)
    else:
        sees.append(_("Never sees %(webhooks)s.") % words)
    return RoleDescription(role, Role(role).label, str(DUTIES[role]), sees)


def role_descriptions() -> list[RoleDescription]:
    return [describe(role) for role in RULE]
