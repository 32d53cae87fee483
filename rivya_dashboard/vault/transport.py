"""The HTTP sessions API keys travel on, and the one place a client is built from a raw key.

Keys for rivya.ai and custom base URLs ride the SSRF-guarded session (peer address checked on
every new connection, no redirects). The built-in sandbox is this server itself, at an address
taken from RIVYA_PUBLIC_URL or the request's checked Host, so its keys use the client's plain
shared session, which may reach loopback.
"""

import threading
from typing import TYPE_CHECKING

import requests
from django.http import HttpRequest

from rivya_dashboard.rivya.client import RivyaClient
from rivya_dashboard.vault import ssrf

if TYPE_CHECKING:
    from rivya_dashboard.vault.models import ApiKey

SANDBOX = "sandbox"

_guarded: requests.Session | None = None
_lock = threading.Lock()


def guarded_session() -> requests.Session:
    global _guarded
    with _lock:
        if _guarded is None:
            _guarded = ssrf.guarded_session()
        return _guarded


def session_for(environment: str) -> requests.Session | None:
    """The shared session for keys of this environment; None means the client's own."""
    if environment == SANDBOX:
        return None
    return guarded_session()


def build_client(
    key: "ApiKey", raw: str, *, session: requests.Session | None = None
) -> RivyaClient:
    return RivyaClient(key.base_url, raw, session=session or session_for(key.environment))


def sandbox_base_url(request: HttpRequest | None, public_url: str) -> str:
    origin = public_url or (f"{request.scheme}://{request.get_host()}" if request else "")
    return f"{origin.rstrip('/')}/sandbox/api/v1"
