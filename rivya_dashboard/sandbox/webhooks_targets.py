"""Webhook target URL rules of contract §9.2, checked at create/update and again before each POST.

Names are resolved and every address they resolve to must be public, so a name pointing at
127.0.0.1 or 10.0.0.0/8 is refused like the literal address would be. The sandbox can allow local
targets (WebhookSettings.allow_local_targets) so demos can receive events on this machine: then
loopback and private ranges pass, never link-local (cloud metadata at 169.254.169.254),
multicast, unspecified or reserved addresses.

At create and update a name that does not resolve is accepted, so the sandbox works offline: its
deliveries then fail and the attempt says why. Only names that do resolve to refused addresses
are refused there.
"""

import ipaddress
import re
import socket
from urllib.parse import urlsplit

from django.utils.translation import gettext as _

from rivya_dashboard import outbound

LOCAL_NAME_SUFFIXES = (".localhost", ".local", ".internal", ".home.arpa", ".localdomain")
# A DNS name as a URI carries it (RFC 3986 reg-name, RFC 1123 labels): an IDN in its xn-- form.
HOST_LABEL = re.compile(r"(?!-)[A-Za-z0-9_-]{1,63}(?<!-)")


class TargetRejected(Exception):
    """The URL breaks a §9.2 rule; the message names the rule (→ 400 webhook_url_rejected)."""


def resolve(host: str, port: int) -> list[str]:
    """Every address the name resolves to (tests replace this to stay off the network)."""
    try:
        infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError) as error:
        message = _("The host name %(host)s does not resolve.") % {"host": host}
        raise TargetRejected(message) from error
    return sorted({info[4][0] for info in infos})


def check_target(url: str, *, allow_local: bool, must_resolve: bool = True) -> str:
    """Return the URL when it may receive deliveries, else raise TargetRejected.

    must_resolve=False (create and update) accepts a host name that does not resolve."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:
        message = _("The URL cannot be parsed: %(error)s.") % {"error": error}
        raise TargetRejected(message) from error
    allowed_schemes = ("https", "http") if allow_local else ("https",)
    if parts.scheme not in allowed_schemes:
        raise TargetRejected(_("The URL must use https://."))
    if not parts.hostname:
        raise TargetRejected(_("The URL has no host name."))
    if parts.username is not None or parts.password is not None:
        raise TargetRejected(_("The URL must not embed credentials (user:password@)."))
    if parts.fragment or url.endswith("#"):
        raise TargetRejected(_("The URL must not contain a #fragment."))
    if not valid_host(parts.hostname):
        raise TargetRejected(
            _(
                "The URL's host is not a valid host name; write an international name in its "
                "xn-- form."
            )
        )
    port = port or (443 if parts.scheme == "https" else 80)
    _check_addresses(parts.hostname, port, allow_local=allow_local, must_resolve=must_resolve)
    return url


def _check_addresses(host: str, port: int, *, allow_local: bool, must_resolve: bool) -> None:
    name = host.lower().rstrip(".")
    if not allow_local and (name == "localhost" or name.endswith(LOCAL_NAME_SUFFIXES)):
        raise TargetRejected(_("The URL points at a local host name (%(host)s).") % {"host": host})
    try:
        addresses = resolve(host, port)
    except TargetRejected:
        if must_resolve:
            raise
        return
    for address in addresses:
        problem = address_problem(address)
        if problem and not (allow_local and local_target(address)):
            raise TargetRejected(
                _("The URL's host %(host)s resolves to %(address)s, %(problem)s.")
                % {"host": host, "address": address, "problem": problem}
            )


def valid_host(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        labels = host.rstrip(".").split(".")
        return len(host) <= 253 and all(HOST_LABEL.fullmatch(label) for label in labels)
    return True


def local_target(address: str) -> bool:
    """Loopback or private: what "allow local targets" opens, and nothing more."""
    return outbound.is_internal_but_allowable(outbound.parse_address(address))


def address_problem(address: str) -> str | None:
    """Why an address may not receive deliveries, or None when it is a public address."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        # IPv4-mapped, 6to4 and Teredo addresses reach the IPv4 address they carry.
        inner = ip.ipv4_mapped or ip.sixtofour or (ip.teredo and ip.teredo[1])
        if inner:
            return address_problem(str(inner))
        if ip.is_site_local:
            # fec0::/10 is deprecated but still routed by some stacks, and is_global allows it.
            return _("a private or local-network address")
    if ip.is_loopback:
        return _("a loopback address")
    if ip.is_unspecified or ip.is_reserved or ip.is_multicast:
        return _("a reserved address")
    if ip.is_private or ip.is_link_local:
        return _("a private or local-network address")
    if not ip.is_global:
        return _("a reserved address")
    return None
