"""Webhook target URL rules of contract §9.2, checked at create/update and again before each POST.

Names are resolved and every address they resolve to must be public, so a name pointing at
127.0.0.1 or 10.0.0.0/8 is refused like the literal address would be. The sandbox can allow local
targets (WebhookSettings.allow_local_targets) so demos can receive events on this machine.
"""

import ipaddress
import socket
from urllib.parse import urlsplit

from django.utils.translation import gettext as _

LOCAL_NAME_SUFFIXES = (".localhost", ".local", ".internal", ".home.arpa", ".localdomain")


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


def check_target(url: str, *, allow_local: bool) -> str:
    """Return the URL when it may receive deliveries, else raise TargetRejected."""
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
    if not allow_local:
        _check_public(parts.hostname, port or (443 if parts.scheme == "https" else 80))
    return url


def _check_public(host: str, port: int) -> None:
    name = host.lower().rstrip(".")
    if name == "localhost" or name.endswith(LOCAL_NAME_SUFFIXES):
        raise TargetRejected(_("The URL points at a local host name (%(host)s).") % {"host": host})
    for address in resolve(host, port):
        problem = address_problem(address)
        if problem:
            raise TargetRejected(
                _("The URL's host %(host)s resolves to %(address)s, %(problem)s.")
                % {"host": host, "address": address, "problem": problem}
            )


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
