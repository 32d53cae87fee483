"""How the console speaks HTTP to anything outside itself: the one door out.

Every outbound request of the project (API keys' calls, result downloads, inbox forwards and
replays, low-balance alerts, the sandbox's webhook deliveries) goes out on a session made here,
and no other module imports `requests`, `urllib3` or `http.client` to send
(tests/unit/test_outbound.py scans for it). Every session:

- is made once per process and pools its connections (a new pool per call pays a fresh TCP and
  TLS handshake every time);
- ignores proxy variables from the environment: a proxy would become the peer the guard checks
  and hide the real target. RIVYA_OUTBOUND_PROXY names one explicitly; the guard then checks
  every address the target's name resolves to before each request, since the proxy connects;
- follows no redirect, even for a caller that asks it to (a redirect could carry a key or a
  member's request to a host nobody checked);
- keeps no cookie: one process serves many teams' keys, nothing a server sets may ride along;
- sends a timeout on every request (DEFAULT_TIMEOUT unless the caller gives one) and one
  User-Agent;
- checks the address each new connection reached against the SSRF guard, so a name that
  re-resolves to 127.0.0.1 after the URL was checked (DNS rebinding) is still refused.

The only sessions without the address guard are the sandbox ones, and they reach nothing but
this console's own sandbox: URLs under /sandbox/api/ at RIVYA_PUBLIC_URL, or else at the address
`serve` listens on (RIVYA_LISTEN_URL, set by serve for its processes). Never a request's Host.

Calls made for Rivya API keys (api_session) are reported to exchange listeners
(add_exchange_listener), which is how the API workbench records them.
"""

import ipaddress
import logging
import posixpath
import re
import socket
import threading
from collections.abc import Callable
from http.cookiejar import DefaultCookiePolicy
from typing import Any
from urllib.parse import unquote, urlsplit

import requests
import urllib3
from django.conf import settings
from django.utils.translation import gettext as _
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from rivya_dashboard import __version__

log = logging.getLogger(__name__)

USER_AGENT = f"RivyaConsole/{__version__}"
# (connect, read): connecting should take milliseconds; a read waits for a slow model at most 30 s.
DEFAULT_TIMEOUT = (3.05, 30.0)
# As many pooled connections per host as a web process has threads (serve's default).
POOL_HOSTS = 4
POOL_SIZE = 32
SANDBOX_PREFIX = "/sandbox/api/"
SANDBOX_API_PATH = "/sandbox/api/v1"

# The names callers use instead of importing requests themselves.
Session = requests.Session
Response = requests.Response
PreparedRequest = requests.PreparedRequest
RequestFailed = requests.RequestException
Timeout = requests.Timeout

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
NAT64 = ipaddress.ip_network("64:ff9b::/96")
SHARED_ADDRESS_SPACE = ipaddress.ip_network("100.64.0.0/10")
# A host made only of digits, dots and hex/octal notation: resolvers read "2130706433" or
# "0x7f.1" as an address, so only the canonical dotted-decimal form is accepted.
NUMERIC_HOST = re.compile(r"^(0x[0-9a-f]+|[0-9]+)(\.(0x[0-9a-f]*|[0-9]+))*\.?$", re.IGNORECASE)


class UnsafeURL(ValueError):
    """The URL may not be called from the server; the message says what to change."""


class BlockedAddress(OSError):
    """A connection reached an address the guard forbids; raised at connect time."""


class Refused(requests.RequestException):
    """The policy forbids this destination; raised before anything is sent."""


# --- Which addresses may be reached ----------------------------------------------------------


def private_allowed() -> bool:
    return bool(settings.RIVYA_ALLOW_PRIVATE_BASE_URLS)


def embedded_ipv4(ip: IPAddress) -> list[IPAddress]:
    """IPv6 forms that carry an IPv4 address a gateway would deliver to."""
    if ip.version != 6:
        return []
    found: list[IPAddress] = []
    if ip.ipv4_mapped:
        found.append(ip.ipv4_mapped)
    if ip.sixtofour:
        found.append(ip.sixtofour)
    if ip.teredo:
        found.extend(ip.teredo)
    if ip in NAT64:
        found.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    return found


def is_public(ip: IPAddress) -> bool:
    inner = embedded_ipv4(ip)
    if inner:
        return all(is_public(address) for address in inner)
    return ip.is_global and not (
        ip.is_loopback
        # fec0::/10 is deprecated but still routed by some stacks, and is_global allows it.
        or getattr(ip, "is_site_local", False)
        or ip.is_private
        or ip.is_link_local
        or ip.is_reserved
        or ip.is_multicast
        or ip.is_unspecified
    )


def is_internal_but_allowable(ip: IPAddress) -> bool:
    """Loopback and private ranges, which a local-targets switch may open; never link-local
    (cloud metadata lives at 169.254.169.254), multicast, reserved or the unspecified address."""
    inner = embedded_ipv4(ip)
    if inner:
        return all(is_public(a) or is_internal_but_allowable(a) for a in inner)
    if ip.is_loopback:
        return True
    # Python counts 240.0.0.0/4 as private; reserved ranges are nobody's local network.
    if ip.is_link_local or ip.is_multicast or ip.is_unspecified or ip.is_reserved:
        return False
    return ip.is_private or ip in SHARED_ADDRESS_SPACE


def address_allowed(ip: IPAddress, *, allow_private: bool) -> bool:
    return is_public(ip) or (allow_private and is_internal_but_allowable(ip))


def parse_address(text: str) -> IPAddress:
    return ipaddress.ip_address(text.split("%", 1)[0])


def resolve(host: str, port: int) -> list[IPAddress]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        raise UnsafeURL(
            _("The host name %(host)s does not resolve; check the spelling.") % {"host": host}
        ) from None
    return [parse_address(info[4][0]) for info in infos]


def is_dotted_quad(host: str) -> bool:
    try:
        return str(ipaddress.IPv4Address(host)) == host
    except ValueError:
        return False


def check_url(url: str, *, allow_private: bool | None = None, advice: str = "") -> str:
    """Return url stripped of a trailing slash, or raise UnsafeURL saying what to fix.

    `advice` ends a refused private address with what that field should hold instead: a key's
    base URL, an alert URL and a forward target each want a different kind of address."""
    if allow_private is None:
        allow_private = private_allowed()
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        raise UnsafeURL(_("This is not a valid URL; paste the full address.")) from None
    if parts.scheme not in ("http", "https"):
        raise UnsafeURL(_("Use an http:// or https:// address."))
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise UnsafeURL(_("Remove the user name and password from the URL."))
    host = parts.hostname or ""
    if not host:
        raise UnsafeURL(_("The URL has no host name; paste the full address."))
    if parts.query or parts.fragment:
        raise UnsafeURL(_("Remove the ?query and #fragment from the URL."))
    if "%" in host:
        raise UnsafeURL(_("Remove the %-encoding or the interface (%…) from the host name."))
    if NUMERIC_HOST.match(host) and not is_dotted_quad(host):
        raise UnsafeURL(_("Write the IP address as four decimal numbers, like 203.0.113.7."))
    check_resolved(host, port or (443 if parts.scheme == "https" else 80), allow_private, advice)
    return url.strip().rstrip("/")


def check_resolved(host: str, port: int, allow_private: bool, advice: str = "") -> None:
    addresses = resolve(host, port)
    blocked = [str(ip) for ip in addresses if not address_allowed(ip, allow_private=allow_private)]
    if blocked or not addresses:
        raise UnsafeURL(
            _(
                "%(host)s points at a private or reserved address (%(addresses)s); the console "
                "only calls public addresses."
            )
            % {"host": host, "addresses": ", ".join(blocked) or "-"}
            + (f" {advice}" if advice else "")
        )


# --- This console's own sandbox --------------------------------------------------------------


def own_origin() -> str:
    """Where this console reaches itself: RIVYA_PUBLIC_URL, else the address serve listens on;
    empty when neither is known. Never taken from a request."""
    return (settings.RIVYA_PUBLIC_URL or settings.RIVYA_LISTEN_URL).rstrip("/")


def own_sandbox_url() -> str:
    """The base URL of this console's own sandbox API, or "" when the console does not know its
    own address (then no key can reach the sandbox)."""
    origin = own_origin()
    return f"{origin}{SANDBOX_API_PATH}" if origin and settings.RIVYA_SANDBOX else ""


def _origin_of(url: str) -> tuple[str, str, int] | None:
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.username:
        return None
    return parts.scheme, parts.hostname.lower(), port or (443 if parts.scheme == "https" else 80)


def is_own_sandbox(url: str) -> bool:
    """True when url lies under this console's own sandbox (its API or its media)."""
    origin = own_origin()
    if not origin or not settings.RIVYA_SANDBOX:
        return False
    if _origin_of(url) is None or _origin_of(url) != _origin_of(origin):
        return False
    path = urlsplit(url.strip()).path
    # urllib3 removes dot segments before sending: "/sandbox/api/../../admin" must not pass.
    normal = posixpath.normpath(unquote(path))
    return path.startswith(SANDBOX_PREFIX) and f"{normal}/".startswith(SANDBOX_PREFIX)


def is_own_sandbox_api(base_url: str) -> bool:
    own = own_sandbox_url()
    return bool(own) and base_url.strip().rstrip("/") == own


# --- Sessions --------------------------------------------------------------------------------


class RefuseCookies(DefaultCookiePolicy):
    def set_ok(self, cookie: Any, request: Any) -> bool:
        return False


def configured_proxies() -> dict[str, str]:
    proxy = settings.RIVYA_OUTBOUND_PROXY
    return {"http": proxy, "https": proxy} if proxy else {}


class OutboundSession(requests.Session):
    """A session that always sends a timeout and never follows a redirect.

    A redirect answer comes back to the caller as it is (its status and Location); nothing is
    sent to the Location, whatever the caller asked.
    """

    def __init__(self, *, proxied: bool) -> None:
        super().__init__()
        self.proxied = proxied
        self.trust_env = False
        self.cookies.set_policy(RefuseCookies())
        self.headers["User-Agent"] = USER_AGENT

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> requests.Response:
        kwargs["proxies"] = configured_proxies() if self.proxied else {}
        return super().request(method, url, *args, **kwargs)

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = DEFAULT_TIMEOUT
        kwargs["allow_redirects"] = False
        return super().send(request, **kwargs)


def check_peer(sock: socket.socket, host: str, allow_private: bool | None) -> None:
    peer = parse_address(sock.getpeername()[0])
    allowed = private_allowed() if allow_private is None else allow_private
    if not address_allowed(peer, allow_private=allowed):
        sock.close()
        raise BlockedAddress(f"Refused to talk to {host}: it reached the private address {peer}")


class GuardedHTTPConnection(HTTPConnection):
    # None: RIVYA_ALLOW_PRIVATE_BASE_URLS decides; True: loopback and private ranges too.
    allow_private: bool | None = None

    def _new_conn(self) -> socket.socket:
        sock = super()._new_conn()
        check_peer(sock, self.host, self.allow_private)
        return sock


class GuardedHTTPSConnection(HTTPSConnection):
    allow_private: bool | None = None

    def _new_conn(self) -> socket.socket:
        sock = super()._new_conn()
        check_peer(sock, self.host, self.allow_private)
        return sock


class StrictHTTPConnection(GuardedHTTPConnection):
    allow_private = False


class StrictHTTPSConnection(GuardedHTTPSConnection):
    allow_private = False


class LocalHTTPConnection(GuardedHTTPConnection):
    allow_private = True


class LocalHTTPSConnection(GuardedHTTPSConnection):
    allow_private = True


CONNECTIONS: dict[bool | None, tuple[type[HTTPConnection], type[HTTPSConnection]]] = {
    None: (GuardedHTTPConnection, GuardedHTTPSConnection),
    False: (StrictHTTPConnection, StrictHTTPSConnection),
    True: (LocalHTTPConnection, LocalHTTPSConnection),
}


class GuardedAdapter(HTTPAdapter):
    """Checks the peer address of every new connection, whatever the name resolved to."""

    def __init__(self, allow_private: bool | None) -> None:
        self.allow_private = allow_private
        super().__init__(pool_connections=POOL_HOSTS, pool_maxsize=POOL_SIZE)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        plain, tls = CONNECTIONS[self.allow_private]
        self.poolmanager.pool_classes_by_scheme = {
            "http": type("GuardedPool", (HTTPConnectionPool,), {"ConnectionCls": plain}),
            "https": type("GuardedTLSPool", (HTTPSConnectionPool,), {"ConnectionCls": tls}),
        }

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        if kwargs.get("proxies"):
            # Through a proxy the peer is the proxy: check the target's own addresses instead.
            self.check_name(request.url or "")
        return super().send(request, **kwargs)

    def check_name(self, url: str) -> None:
        origin = _origin_of(url)
        if origin is None:
            raise Refused(f"Refused to send to {url!r}: not an http(s) URL")
        allowed = private_allowed() if self.allow_private is None else self.allow_private
        try:
            check_resolved(origin[1], origin[2], allowed)
        except UnsafeURL as exc:
            raise Refused(str(exc)) from None


class OwnSandboxAdapter(HTTPAdapter):
    """Reaches this console's own sandbox and nothing else; no address guard, because the
    sandbox runs on this machine (often on loopback)."""

    def __init__(self) -> None:
        super().__init__(pool_connections=POOL_HOSTS, pool_maxsize=POOL_SIZE)

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        if not is_own_sandbox(request.url or ""):
            raise Refused(
                "Sandbox keys reach only this console's own sandbox "
                f"({own_sandbox_url() or 'address unknown: set RIVYA_PUBLIC_URL'})."
            )
        return super().send(request, **kwargs)


_sessions: dict[str, requests.Session] = {}
_lock = threading.Lock()


def _shared(name: str, make: Callable[[], requests.Session]) -> requests.Session:
    with _lock:
        session = _sessions.get(name)
        if session is None:
            session = _sessions[name] = make()
        return session


def _mounted(adapter: HTTPAdapter, *, proxied: bool = True) -> requests.Session:
    session = OutboundSession(proxied=proxied)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def _reported(session: requests.Session) -> requests.Session:
    session.hooks["response"].append(_report_exchange)
    return session


def guarded_session(*, allow_local: bool | None = None) -> requests.Session:
    """The shared session for URLs a member typed or a remote API handed back.

    allow_local None: RIVYA_ALLOW_PRIVATE_BASE_URLS decides whether loopback and private
    addresses may be reached; False: public addresses only; True: loopback and private ranges
    too (a switch for local targets), never link-local, multicast or unspecified addresses.
    """
    name = {None: "guarded", False: "public", True: "local"}[allow_local]
    return _shared(name, lambda: _mounted(GuardedAdapter(allow_local)))


def sandbox_session() -> requests.Session:
    """The shared session that reaches this console's own sandbox (its media) only."""
    return _shared("sandbox", lambda: _mounted(OwnSandboxAdapter(), proxied=False))


def session_for_url(url: str, *, allow_local: bool | None = None) -> requests.Session:
    """The sandbox session for this console's own sandbox URLs, the guarded one for the rest."""
    if is_own_sandbox(url):
        return sandbox_session()
    return guarded_session(allow_local=allow_local)


def api_session(base_url: str) -> requests.Session:
    """The session a RivyaClient for base_url travels on; exchange listeners see its calls."""
    if is_own_sandbox_api(base_url):
        return _shared(
            "api-sandbox", lambda: _reported(_mounted(OwnSandboxAdapter(), proxied=False))
        )
    return _shared("api", lambda: _reported(_mounted(GuardedAdapter(None))))


def reset_sessions() -> None:
    """Close and forget every shared session (after a settings change, and between tests)."""
    with _lock:
        for session in _sessions.values():
            session.close()
        _sessions.clear()


def read_start(response: requests.Response, limit: int) -> bytes:
    """At most `limit` bytes of a streamed answer, then close it: a huge or endless body is
    never read in full. A body that breaks off gives what arrived before, or nothing."""
    try:
        return response.raw.read(limit, decode_content=True) or b""
    except (urllib3.exceptions.HTTPError, OSError, ValueError):
        return b""
    finally:
        response.close()


# --- Exchange listeners ----------------------------------------------------------------------

ExchangeListener = Callable[[requests.PreparedRequest, requests.Response, float], None]
_listeners: list[ExchangeListener] = []


def add_exchange_listener(listener: ExchangeListener) -> None:
    """Call listener(request, response, elapsed_seconds) after each answer to an API-key call.

    The request is the prepared request as sent (its Authorization header holds the raw key:
    a listener that stores anything must redact it; a streamed upload's body is an encoder, not
    bytes). The response arrives once its headers are in: a streamed body (chat) is still
    unread, and elapsed is the time to those headers. Calls that got no answer (refused,
    timed out) are not reported. A listener that raises is logged and does not break the call.
    """
    if listener not in _listeners:
        _listeners.append(listener)


def remove_exchange_listener(listener: ExchangeListener) -> None:
    if listener in _listeners:
        _listeners.remove(listener)


def _report_exchange(response: requests.Response, *args: Any, **kwargs: Any) -> None:
    elapsed = response.elapsed.total_seconds()
    for listener in list(_listeners):
        try:
            listener(response.request, response, elapsed)
        except Exception:
            log.exception("exchange listener %r failed", listener)
