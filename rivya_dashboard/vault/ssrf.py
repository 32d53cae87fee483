"""Guard outbound requests to URLs a member typed against server-side request forgery.

Two checks: `check_url` before saving (scheme, no credentials, every address the name resolves
to is public) and `GuardedAdapter`, which checks the address each new connection actually
reached, so a name that re-resolves to 127.0.0.1 after the first check (DNS rebinding) or a
redirect to an internal host is still refused. Used for custom API base URLs; webhook forward
targets and alert URLs reuse it.
"""

import ipaddress
import re
import socket
from urllib.parse import urlsplit

import requests
from django.conf import settings
from django.utils.translation import gettext as _
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
NAT64 = ipaddress.ip_network("64:ff9b::/96")
# A host made only of digits, dots and hex/octal notation: resolvers read "2130706433" or
# "0x7f.1" as an address, so only the canonical dotted-decimal form is accepted.
NUMERIC_HOST = re.compile(r"^(0x[0-9a-f]+|[0-9]+)(\.(0x[0-9a-f]*|[0-9]+))*\.?$", re.IGNORECASE)


class UnsafeURL(ValueError):
    """The URL may not be called from the server; the message says what to change."""


class BlockedAddress(OSError):
    """A connection reached an address the guard forbids; raised at connect time."""


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
    """Loopback and private ranges that RIVYA_ALLOW_PRIVATE_BASE_URLS opens; never link-local
    (cloud metadata lives at 169.254.169.254), multicast or the unspecified address."""
    inner = embedded_ipv4(ip)
    if inner:
        return all(is_public(a) or is_internal_but_allowable(a) for a in inner)
    if ip.is_link_local or ip.is_multicast or ip.is_unspecified:
        return False
    return ip.is_loopback or ip.is_private or ip in ipaddress.ip_network("100.64.0.0/10")


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
    port = port or (443 if parts.scheme == "https" else 80)
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
    return url.strip().rstrip("/")


def is_dotted_quad(host: str) -> bool:
    try:
        return str(ipaddress.IPv4Address(host)) == host
    except ValueError:
        return False


def check_peer(sock: socket.socket, host: str) -> None:
    peer = parse_address(sock.getpeername()[0])
    if not address_allowed(peer, allow_private=private_allowed()):
        sock.close()
        raise BlockedAddress(f"Refused to talk to {host}: it reached the private address {peer}")


class GuardedHTTPConnection(HTTPConnection):
    def _new_conn(self) -> socket.socket:
        sock = super()._new_conn()
        check_peer(sock, self.host)
        return sock


class GuardedHTTPSConnection(HTTPSConnection):
    def _new_conn(self) -> socket.socket:
        sock = super()._new_conn()
        check_peer(sock, self.host)
        return sock


class GuardedHTTPPool(HTTPConnectionPool):
    ConnectionCls = GuardedHTTPConnection


class GuardedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = GuardedHTTPSConnection


class GuardedAdapter(HTTPAdapter):
    """Checks the peer address of every new connection, whatever the name resolved to."""

    def init_poolmanager(self, *args, **kwargs) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {
            "http": GuardedHTTPPool,
            "https": GuardedHTTPSPool,
        }


def guarded_session() -> requests.Session:
    session = requests.Session()
    # Proxies from the environment would make the proxy the peer and hide the real target.
    session.trust_env = False
    # A redirect is refused outright rather than followed, even by a caller that forgets
    # allow_redirects=False.
    session.max_redirects = 0
    # As many pooled connections per host as a web process has threads (serve's default).
    adapter = GuardedAdapter(pool_connections=4, pool_maxsize=32)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session
