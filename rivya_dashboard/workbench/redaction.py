"""Credentials replaced by their display form before anything is shown, copied or stored.

`rvya_sk_…wxyz` and `whsec_…wxyz` name a value (the prefix and its last four characters) without
revealing it, the way the Keys page shows a key. Applied to headers, URLs and bodies alike, so a
secret that travels inside a response (a new webhook's signing secret) is caught as well.
"""

import re
from collections.abc import Iterable

SECRET = re.compile(r"(rvya_sk_|whsec_)([A-Za-z0-9_\-+/=]*)")
SENSITIVE_HEADERS = {"cookie", "set-cookie", "proxy-authorization", "x-api-key"}
REDACTED = "[redacted]"


def display_form(prefix: str, value: str) -> str:
    return f"{prefix}…{value[-4:]}" if len(value) >= 4 else f"{prefix}…"


def redact_text(text: str) -> str:
    return SECRET.sub(lambda match: display_form(match.group(1), match.group(2)), text)


def redact_header(name: str, value: str) -> str:
    lowered = name.lower()
    if lowered in SENSITIVE_HEADERS:
        return REDACTED
    if lowered == "authorization":
        scheme, _space, credential = value.partition(" ")
        if SECRET.search(credential):
            return f"{scheme} {redact_text(credential)}"
        return f"{scheme} …{credential[-4:]}" if credential else REDACTED
    return redact_text(value)


def redact_headers(headers: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    return [(str(name), redact_header(str(name), str(value))) for name, value in headers]
