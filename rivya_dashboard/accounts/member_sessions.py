"""Signed-in sessions: one MemberSession row per browser, found by a hash of its session key.

SessionTrackingMiddleware writes the row after a request at most once a minute (or when the key
changed: sign-in, second factor, password change). Signing a session out deletes its stored
session, so its next request is anonymous at once, and marks the row ended.
"""

import hashlib
import re
import time
from collections.abc import Callable
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import SESSION_KEY
from django.contrib.sessions.models import Session
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.utils.translation import gettext as _

from rivya_dashboard.accounts.audit import client_ip, record
from rivya_dashboard.accounts.models import ROLE_RANK, MemberSession, Role, User

TRACKED_HASH_KEY = "rivya_tracked"
TRACKED_AT_KEY = "rivya_tracked_at"
TRACK_EVERY_SECONDS = 60
USER_AGENT_LENGTH = 300

# (pattern, name), first match wins: Edge and Opera also say "Chrome", Chrome also says "Safari".
BROWSERS = [
    (r"Edg/", "Edge"),
    (r"OPR/|Opera", "Opera"),
    (r"Firefox/|FxiOS/", "Firefox"),
    (r"Chrome/|CriOS/|Chromium/", "Chrome"),
    (r"Safari/", "Safari"),
    (r"curl/", "curl"),
]
SYSTEMS = [
    (r"iPhone", "iPhone"),
    (r"iPad", "iPad"),
    (r"Android", "Android"),
    (r"Windows", "Windows"),
    (r"Mac OS X|Macintosh", "macOS"),
    (r"CrOS", "ChromeOS"),
    (r"Linux", "Linux"),
]


class SessionRuleError(Exception):
    """A sign-out the rules refuse; the message says what to do instead."""


def key_hash(session_key: str) -> str:
    return hashlib.sha256(session_key.encode()).hexdigest()


def first_match(table: list[tuple[str, str]], user_agent: str) -> str:
    return next((name for pattern, name in table if re.search(pattern, user_agent)), "")


def describe_device(user_agent: str) -> str:
    browser, system = first_match(BROWSERS, user_agent), first_match(SYSTEMS, user_agent)
    if browser and system:
        return _("%(browser)s on %(system)s") % {"browser": browser, "system": system}
    return browser or system or _("Unknown device")


def note_session(request: HttpRequest) -> None:
    """Create or refresh this session's row; follow the key when it was cycled."""
    session = request.session
    if not session.session_key:
        return
    current = key_hash(session.session_key)
    now = int(time.time())
    previous = session.get(TRACKED_HASH_KEY)
    if previous == current and now - session.get(TRACKED_AT_KEY, 0) < TRACK_EVERY_SECONDS:
        return
    if previous and previous != current:
        MemberSession.objects.filter(key_hash=previous).update(key_hash=current)
    MemberSession.objects.update_or_create(
        key_hash=current,
        defaults={"user": request.user, "last_seen": timezone.now(), "ip": client_ip(request)},
        create_defaults={
            "user": request.user,
            "ip": client_ip(request),
            "user_agent": request.headers.get("User-Agent", "")[:USER_AGENT_LENGTH],
        },
    )
    session[TRACKED_HASH_KEY] = current
    session[TRACKED_AT_KEY] = now


class SessionTrackingMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.user.is_authenticated:
            note_session(request)
        response = self.get_response(request)
        # Again after the view, which may have signed in, cycled the key or signed out.
        if request.user.is_authenticated:
            note_session(request)
        return response


def end_tracked_session(sender: type, request: HttpRequest | None, **kwargs: object) -> None:
    """Connected to user_logged_out: the row of a session signed out by its member ends too."""
    if request is not None and request.session.session_key:
        rows = MemberSession.objects.filter(key_hash=key_hash(request.session.session_key))
        rows.update(ended_at=timezone.now())


def live_sessions(member: User | None = None) -> QuerySet[MemberSession]:
    """Rows of sessions (of `member`, or everyone's) that can still make a request: not ended,
    not idle too long, not past the maximum length."""
    now = timezone.now()
    rows = MemberSession.objects.all() if member is None else member.member_sessions.all()
    return rows.filter(
        ended_at__isnull=True,
        last_seen__gte=now - timedelta(minutes=settings.RIVYA_SESSION_IDLE_MINUTES),
        created_at__gte=now - timedelta(hours=settings.RIVYA_SESSION_MAX_HOURS),
    )


def delete_stored_sessions(member: User, hashes: set[str] | None, keep: str | None) -> int:
    """Delete the member's stored sessions (those in `hashes`, or all), but never `keep`."""
    member_id = str(member.pk)
    ended = [
        stored.pk
        for stored in Session.objects.filter(expire_date__gt=timezone.now()).iterator()
        if stored.pk != keep
        and (hashes is None or key_hash(stored.pk) in hashes)
        and stored.get_decoded().get(SESSION_KEY) == member_id
    ]
    Session.objects.filter(pk__in=ended).delete()
    return len(ended)


@transaction.atomic
def end_sessions(
    member: User, *, keep: str | None = None, only: MemberSession | None = None
) -> int:
    """Sign the member out of every session but `keep` (a session key), or of `only` that one."""
    rows = MemberSession.objects.filter(user=member, ended_at__isnull=True)
    if keep:
        rows = rows.exclude(key_hash=key_hash(keep))
    if only is not None:
        rows = rows.filter(pk=only.pk)
    hashes = None if only is None else {only.key_hash}
    ended = delete_stored_sessions(member, hashes, keep)
    rows.update(ended_at=timezone.now())
    return ended


def do_end_own_session(request: HttpRequest, row: MemberSession) -> None:
    if row.key_hash == key_hash(request.session.session_key or ""):
        raise SessionRuleError(_("That is this session. Use “Sign out” at the top instead."))
    end_sessions(request.user, only=row)
    record(request.user, "session.ended", request=request, device=describe_device(row.user_agent))


def do_end_other_sessions(request: HttpRequest) -> int:
    ended = end_sessions(request.user, keep=request.session.session_key)
    record(request.user, "session.ended_others", request=request, count=ended)
    return ended


def do_sign_out_everywhere(actor: User, member: User, request: HttpRequest) -> int:
    if ROLE_RANK[Role(member.role)] > ROLE_RANK[Role(actor.role)]:
        raise SessionRuleError(_("Only an owner can sign an owner out. Ask one to do it."))
    keep = request.session.session_key if member == actor else None
    ended = end_sessions(member, keep=keep)
    record(actor, "session.signed_out_everywhere", member.get_username(), request=request)
    return ended
