"""The one place a client is built from a raw key, on the session its base URL calls for.

Keys for rivya.ai and custom base URLs ride outbound's guarded API session. A key for this
console's own sandbox (the sandbox environment, or any key whose base URL is the sandbox's)
always uses the sandbox's current address from outbound, never an address stored from a
request, and its session reaches that sandbox and nothing else.
"""

from typing import TYPE_CHECKING

from django.conf import settings

from rivya_dashboard import outbound
from rivya_dashboard.rivya.client import RivyaClient

if TYPE_CHECKING:
    from rivya_dashboard.vault.models import ApiKey

SANDBOX = "sandbox"
# The sandbox's control API (sandbox/control_api.py), beside its API under /sandbox/api/.
SANDBOX_CONTROL_PATH = "/sandbox/api/control"


def base_url_for(key: "ApiKey") -> str:
    if key.environment == SANDBOX:
        return outbound.own_sandbox_url() or key.base_url
    return key.base_url


def session_for(base_url: str) -> outbound.Session:
    return outbound.api_session(base_url)


def build_client(
    key: "ApiKey", raw: str, *, session: outbound.Session | None = None
) -> RivyaClient:
    base_url = base_url_for(key)
    return RivyaClient(base_url, raw, session=session or session_for(base_url))


def sandbox_control_client() -> RivyaClient:
    """A client for the control API of this console's own sandbox, on the sandbox's session
    (which reaches nothing else, and whose calls no exchange listener records)."""
    url = outbound.own_origin() + SANDBOX_CONTROL_PATH
    session = outbound.session_for_url(url)
    return RivyaClient(url, settings.RIVYA_SANDBOX_CONTROL_TOKEN, session=session)
