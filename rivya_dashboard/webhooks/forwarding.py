"""Replay and live forwarding of stored requests, to targets checked against request forgery.

Targets pass outbound's checks: public addresses only, peer address re-checked on connect, no
redirects. Loopback and private targets (a local dev server) are allowed only for owners and
admins, and only with RIVYA_ALLOW_LOCAL_FORWARD on; those go out on outbound's local session,
whose peer guard still refuses link-local (cloud metadata), multicast and unspecified addresses.
"""

import re
import time
from urllib.parse import urlsplit, urlunsplit

from django.conf import settings
from django.db import transaction
from django.http import HttpRequest
from django.utils.translation import gettext as _

from rivya_dashboard import outbound
from rivya_dashboard.accounts.audit import record
from rivya_dashboard.accounts.models import Role, User
from rivya_dashboard.rivya import signing
from rivya_dashboard.webhooks.models import ForwardAttempt, Inbox, InboxRequest

TIMEOUT = (3.05, 10.0)
EXCERPT_CHARS = 2000
# Set by the sender's client or by the connection, never copied onto a forward.
NOT_FORWARDED = {"host", "content-length", "connection", "accept-encoding", "transfer-encoding"}
SIGNATURE_HEADERS = {
    signing.ID_HEADER.lower(),
    signing.TIMESTAMP_HEADER.lower(),
    signing.SIGNATURE_HEADER.lower(),
}

# RFC 9110 §5.6.2: a field name is a token. §5.5: a field value is visible ASCII or obs-text,
# with spaces and tabs only between them; anything else (CR, LF, NUL) splits or ends the message.
HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
HEADER_VALUE = re.compile(
    r"(?:[\x21-\x7e\x80-\xff](?:[\t\x20-\x7e\x80-\xff]*[\x21-\x7e\x80-\xff])?)?"
)


class TargetRefused(Exception):
    """The target may not be called from the server; the message says why and what to do."""


def may_reach_local(user: User | None) -> bool:
    return bool(
        settings.RIVYA_ALLOW_LOCAL_FORWARD and user is not None and user.has_role(Role.ADMIN)
    )


def check_target(url: str, *, allow_local: bool) -> str:
    url = url.strip()
    try:
        parts = urlsplit(url)
    except ValueError:
        raise TargetRefused(_("This is not a valid URL; paste the full address.")) from None
    if parts.fragment:
        raise TargetRefused(_("Remove the #fragment from the target URL."))
    # The SSRF check refuses query strings meant for base URLs; a forward target may have one.
    bare = urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))
    try:
        outbound.check_url(bare, allow_private=allow_local)
    except outbound.UnsafeURL as error:
        hint = (
            ""
            if allow_local
            else " "
            + _(
                "Local targets need the owner or admin role and RIVYA_ALLOW_LOCAL_FORWARD "
                "switched on."
            )
        )
        raise TargetRefused(f"{error}{hint}") from None
    return url


def outgoing_headers(stored: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in stored.items() if k.lower() not in NOT_FORWARDED}


def parse_header_lines(text: str) -> dict[str, str]:
    """'Name: value' lines, as typed in the replay form; blank lines are skipped."""
    headers = {}
    for line in text.splitlines():
        name, colon, value = line.partition(":")
        if not line.strip():
            continue
        if not colon or not name.strip():
            raise TargetRefused(
                _("Write each header as Name: value on its own line (%(line)s).")
                % {"line": line[:40]}
            )
        headers[name.strip()] = value.strip()
    return headers


def sendable(headers: dict[str, str]) -> dict[str, str]:
    """Only names and values HTTP can carry: say so in the form rather than send a request the
    receiver reads differently (a name with a space ends the header block, losing the body)."""
    for name, value in headers.items():
        line = f"{name}: {value}"[:40]
        if not HEADER_NAME.fullmatch(name):
            raise TargetRefused(
                _(
                    "A header name may hold only letters, digits and !#$%%&'*+-.^_`|~, without "
                    "spaces; correct or remove this one (%(line)s)."
                )
                % {"line": line}
            )
        try:
            value.encode("latin-1")
        except UnicodeEncodeError:
            raise TargetRefused(
                _("HTTP headers carry only Latin-1 text; change or remove this one (%(line)s).")
                % {"line": line}
            ) from None
        if not HEADER_VALUE.fullmatch(value):
            raise TargetRefused(
                _("A header value may not hold control characters; remove them (%(line)s).")
                % {"line": line}
            )
    return headers


def header_lines(headers: dict[str, str]) -> str:
    return "\n".join(f"{k}: {v}" for k, v in outgoing_headers(headers).items())


def resigned(headers: dict[str, str], body: bytes, secret: str, msg_id: str) -> dict[str, str]:
    fresh = signing.sign(secret, body, msg_id=msg_id, timestamp=int(time.time()))
    kept = {k: v for k, v in headers.items() if k.lower() not in SIGNATURE_HEADERS}
    return {**kept, **fresh}


def send(
    target: str, body: bytes, headers: dict[str, str], *, allow_local: bool
) -> tuple[int | None, str, int, str]:
    """POST once: (status, response excerpt, duration ms, error)."""
    session = outbound.guarded_session(allow_local=allow_local)
    started = time.monotonic()
    try:
        response = session.post(target, data=body, headers=headers, timeout=TIMEOUT, stream=True)
    except outbound.Timeout:
        return None, "", elapsed(started), _("No answer within 10 s.")
    except (outbound.RequestFailed, outbound.BlockedAddress) as error:
        return (
            None,
            "",
            elapsed(started),
            _("Could not connect: %(error)s") % {"error": type(error).__name__},
        )
    # Only the start of the answer is kept; a huge or endless body is never read in full.
    raw = outbound.read_start(response, EXCERPT_CHARS * 4)
    excerpt = raw.decode(response.encoding or "utf-8", "replace")[:EXCERPT_CHARS]
    return response.status_code, excerpt, elapsed(started), ""


def elapsed(started: float) -> int:
    return round((time.monotonic() - started) * 1000)


def attempt(
    row: InboxRequest,
    target: str,
    body: bytes,
    headers: dict[str, str],
    *,
    kind: str,
    actor: User | None,
    allow_local: bool,
    resigned_with: bool = False,
) -> ForwardAttempt:
    try:
        check_target(target, allow_local=allow_local)
    except TargetRefused as error:
        status, excerpt, duration, problem = None, "", 0, str(error)
    else:
        status, excerpt, duration, problem = send(target, body, headers, allow_local=allow_local)
    return ForwardAttempt.objects.create(
        request=row,
        kind=kind,
        target_url=target[:500],
        actor=actor,
        resigned=resigned_with,
        edited=body != row.body_bytes,
        response_status=status,
        response_excerpt=excerpt,
        duration_ms=duration,
        error=problem[:400],
    )


def do_replay(
    actor: User,
    row: InboxRequest,
    target: str,
    body: bytes,
    headers: dict[str, str],
    *,
    secret_index: int | None,
    request: HttpRequest | None = None,
) -> ForwardAttempt:
    """Send one stored request (possibly edited, possibly re-signed) and keep what came back."""
    allow_local = may_reach_local(actor)
    check_target(target, allow_local=allow_local)
    if secret_index is not None:
        headers = resigned(headers, body, secret_for(row.inbox, secret_index), row.event_id)
    sent = attempt(
        row,
        target,
        body,
        outgoing_headers(headers),
        kind=ForwardAttempt.Kind.REPLAY,
        actor=actor,
        allow_local=allow_local,
        resigned_with=secret_index is not None,
    )
    record(
        actor,
        "inbox.replayed",
        row.inbox.name,
        request=request,
        request_id=row.pk,
        target_url=target[:200],
        resigned=secret_index is not None,
        edited=sent.edited,
        response_status=sent.response_status,
    )
    return sent


def secret_for(inbox: Inbox, index: int) -> str:
    values = inbox.reveal_secrets()
    if not 0 <= index < len(values):
        raise TargetRefused(_("That secret is no longer stored; pick another."))
    return values[index]


def do_bulk_replay(
    actor: User, inbox: Inbox, ids: list[int], target: str, *, request: HttpRequest | None = None
) -> int:
    from rivya_dashboard.webhooks.tasks import replay_many

    allow_local = may_reach_local(actor)
    check_target(target, allow_local=allow_local)
    record(
        actor,
        "inbox.bulk_replayed",
        inbox.name,
        request=request,
        count=len(ids),
        target_url=target[:200],
    )
    transaction.on_commit(lambda: replay_many.enqueue(ids, target, actor.pk, allow_local))
    return len(ids)


def forward_live(row: InboxRequest) -> ForwardAttempt | None:
    inbox = row.inbox
    if not (inbox.forward_enabled and inbox.forward_url):
        return None
    allow_local = inbox.forward_allows_local and settings.RIVYA_ALLOW_LOCAL_FORWARD
    return attempt(
        row,
        inbox.forward_url,
        row.body_bytes,
        outgoing_headers(row.headers),
        kind=ForwardAttempt.Kind.FORWARD,
        actor=None,
        allow_local=allow_local,
    )
