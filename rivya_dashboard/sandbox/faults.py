"""Fault injection: set globally, per key, or per request with the X-Sandbox-Fault header.

A fault set is a dict of name -> value. Header syntax: comma-separated `name` or `name=value`,
e.g. `X-Sandbox-Fault: status=503` or `latency=250, reset-after-delta`. Per-request faults
override per-key ones, which override global ones. A stored set with `times=N` applies to the
next N requests only (e.g. {"status": 503, "times": 1} to see a client retry succeed). The
control page uses set_global_faults() and set_key_faults(); FAULTS describes every name and
the kind of value it takes.
"""

import time
from typing import Any

from django.utils.translation import gettext_lazy as _

from rivya_dashboard.sandbox import choices
from rivya_dashboard.sandbox.errors import ApiError, validation_failed
from rivya_dashboard.sandbox.models import SandboxKey, SandboxSettings

FLAG = "flag"
MILLISECONDS = "ms"
STATUS = "status"
COUNT = "count"

FAULTS: dict[str, tuple[str, Any]] = {
    "latency": (MILLISECONDS, _("Added latency before every response (ms)")),
    "status": (STATUS, _("Answer every request with this error status (429, 500, 502, 503)")),
    "reset-before-delta": (FLAG, _("Chat stream: drop the connection before the first delta")),
    "reset-after-delta": (FLAG, _("Chat stream: drop the connection after the first delta")),
    "slow-drip": (MILLISECONDS, _("Chat stream: pause this long between deltas (ms)")),
    "malformed-sse": (FLAG, _("Chat stream: send one frame that is not valid SSE JSON")),
    "bad-signature": (FLAG, _("Webhooks: sign deliveries with a wrong secret")),
    "stale-timestamp": (FLAG, _("Webhooks: send a timestamp ten minutes old")),
    "duplicate-delivery": (FLAG, _("Webhooks: deliver every event twice")),
    "out-of-order": (FLAG, _("Webhooks: deliver events newest first")),
    "times": (COUNT, _("Apply a stored fault set to this many requests, then clear it")),
}
MAX_LATENCY_MS = 60_000


def normalize(faults: dict[str, Any]) -> dict[str, Any]:
    """Check names and values; raise ValueError naming the fault at fault."""
    clean: dict[str, Any] = {}
    for name, value in faults.items():
        if name not in FAULTS:
            raise ValueError(f"Unknown fault {name!r}; known: {', '.join(FAULTS)}")
        kind = FAULTS[name][0]
        if kind == FLAG:
            clean[name] = True
        elif kind == COUNT:
            clean[name] = count(name, value)
        elif kind == STATUS:
            if str(value) not in choices.STATUS_FAULTS:
                raise ValueError(f"Fault status must be one of {', '.join(choices.STATUS_FAULTS)}")
            clean[name] = int(value)
        else:
            clean[name] = milliseconds(name, value)
    return clean


def count(name: str, value: Any) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        number = 0
    if number < 1:
        raise ValueError(f"Fault {name} takes a number of requests, e.g. {name}=2")
    return number


def milliseconds(name: str, value: Any) -> int:
    if value is True:
        return choices.SLOW_DRIP_DEFAULT_MS
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ValueError(f"Fault {name} takes milliseconds, e.g. {name}=500") from None
    if not 0 <= number <= MAX_LATENCY_MS:
        raise ValueError(f"Fault {name} must be between 0 and {MAX_LATENCY_MS} ms")
    return number


def parse_header(header: str) -> dict[str, Any]:
    raw: dict[str, Any] = {}
    for item in header.split(","):
        name, has_value, value = item.strip().partition("=")
        if name:
            raw[name.strip()] = value.strip() if has_value else True
    if "times" in raw:
        raise validation_failed(
            f"{choices.FAULT_HEADER}: times applies to stored faults; the header already "
            "affects only its own request"
        )
    try:
        return normalize(raw)
    except ValueError as exc:
        raise validation_failed(f"{choices.FAULT_HEADER}: {exc}") from None


def merged(
    sandbox: SandboxSettings, key: SandboxKey | None, header: dict[str, Any]
) -> dict[str, Any]:
    stored = consume(sandbox)
    if key is not None:
        stored.update(consume(key))
    return {**stored, **header}


def consume(row: SandboxSettings | SandboxKey) -> dict[str, Any]:
    """The row's faults for this request; a set limited by `times` counts down, then clears."""
    faults = dict(row.faults)
    remaining = faults.pop("times", None)
    if remaining is None:
        return faults
    left = {**faults, "times": remaining - 1} if remaining > 1 else {}
    # Conditional on the value read, so two concurrent requests cannot both take the last use.
    taken = type(row).objects.filter(pk=row.pk, faults=row.faults).update(faults=left)
    return faults if taken else {}


def apply_latency(faults: dict[str, Any]) -> None:
    if faults.get("latency"):
        time.sleep(faults["latency"] / 1000)


def raise_status_fault(faults: dict[str, Any]) -> None:
    status = faults.get("status")
    if status is None:
        return
    code, message = choices.STATUS_FAULTS[str(status)]
    headers = {"Retry-After": "1"} if status == 429 else {}
    raise ApiError(int(status), code, message, headers)


def set_global_faults(faults: dict[str, Any]) -> None:
    sandbox = SandboxSettings.load()
    sandbox.faults = normalize(faults)
    sandbox.save(update_fields=["faults"])


def set_key_faults(key: SandboxKey, faults: dict[str, Any]) -> None:
    key.faults = normalize(faults)
    key.save(update_fields=["faults"])
