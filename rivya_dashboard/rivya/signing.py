"""Webhook signatures, used by the sandbox to sign deliveries and by the console to verify them.

The real Rivya scheme could not be read (contract §9.6), so this is the PROPOSED one, kept in this
single module so it can be swapped once the real scheme is confirmed:

    Rivya-Webhook-Id: evt_...
    Rivya-Webhook-Timestamp: <unix seconds>
    Rivya-Webhook-Signature: v1=<hex> [v1=<hex> ...]

The signature is lowercase hex HMAC-SHA256 over ``<timestamp>.<raw body>``, keyed by the whole
secret string including its ``whsec_`` prefix. The id header is not inside the signed string, so
verify() also requires it to equal the ``id`` of a JSON-object body: otherwise a replayed delivery
could be relabelled with a fresh id and slip past a receiver's duplicate check.
"""

import hashlib
import hmac
import json
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

ID_HEADER = "Rivya-Webhook-Id"
TIMESTAMP_HEADER = "Rivya-Webhook-Timestamp"
SIGNATURE_HEADER = "Rivya-Webhook-Signature"
SECRET_PREFIX = "whsec_"  # noqa: S105 - a prefix, not a secret
API_KEY_PREFIX = "rvya_sk_"
SIGNATURE_VERSION = "v1"
DEFAULT_TOLERANCE = 300

_TIMESTAMP = re.compile(r"[0-9]{1,15}")
_HEX_DIGEST = re.compile(r"[0-9a-f]{64}")
_SEPARATORS = re.compile(r"[\s,]+")


class WebhookVerificationError(Exception):
    """A delivery failed verification; ``reason`` is a stable code, the text says what to fix."""

    MISSING_HEADER = "missing_header"
    MALFORMED_HEADER = "malformed_header"
    TIMESTAMP_TOO_OLD = "timestamp_too_old"
    TIMESTAMP_IN_FUTURE = "timestamp_in_future"
    NO_MATCHING_SIGNATURE = "no_matching_signature"
    WRONG_SECRET_PREFIX = "wrong_secret_prefix"  # noqa: S105 - reason codes
    NO_SECRET = "no_secret"  # noqa: S105
    ID_MISMATCH = "id_mismatch"

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass(frozen=True)
class Verified:
    """What a receiver needs after a successful check: the event id for de-duplication, and
    which configured secret matched (an index, so the secret itself is never passed around)."""

    msg_id: str
    timestamp: int
    secret_index: int


def compute_signature(secret: str, timestamp: int | str, body: bytes) -> str:
    signed = str(timestamp).encode("ascii") + b"." + body
    return hmac.new(secret.encode("utf-8"), signed, hashlib.sha256).hexdigest()


def sign(
    secret: str | Iterable[str], body: bytes, *, msg_id: str, timestamp: int
) -> dict[str, str]:
    """Headers for one delivery. Several secrets give several ``v1=`` values, which is how both
    the old and the new secret sign during a rotation overlap."""
    secrets = _secret_list(secret)
    signatures = " ".join(
        f"{SIGNATURE_VERSION}={compute_signature(s, timestamp, body)}" for s in secrets
    )
    return {ID_HEADER: msg_id, TIMESTAMP_HEADER: str(timestamp), SIGNATURE_HEADER: signatures}


def verify(
    secrets: str | Iterable[str],
    headers: Mapping[str, str],
    body: bytes,
    *,
    tolerance: int = DEFAULT_TOLERANCE,
    now: float | None = None,
) -> Verified:
    """Check one delivery against every secret the receiver currently trusts.

    Raises WebhookVerificationError naming the first check that failed.
    """
    secret_list = _secret_list(secrets)
    lowered = {name.lower(): value for name, value in headers.items()}
    msg_id = _header(lowered, ID_HEADER)
    raw_timestamp = _header(lowered, TIMESTAMP_HEADER)
    signatures = _parse_signatures(_header(lowered, SIGNATURE_HEADER))
    timestamp = _parse_timestamp(raw_timestamp)
    _check_age(timestamp, time.time() if now is None else now, tolerance)
    index = _matching_secret(secret_list, raw_timestamp, body, signatures)
    _check_id(msg_id, body)
    return Verified(msg_id=msg_id, timestamp=timestamp, secret_index=index)


def _secret_list(secrets: str | Iterable[str]) -> list[str]:
    # A lone string is one secret, not an iterable of one-character secrets.
    secret_list = [secrets] if isinstance(secrets, str) else list(secrets)
    if not secret_list:
        raise WebhookVerificationError(
            WebhookVerificationError.NO_SECRET,
            "No signing secret was given; pass the endpoint's whsec_ secret.",
        )
    for position, secret in enumerate(secret_list, start=1):
        if secret.startswith(SECRET_PREFIX):
            continue
        if secret.startswith(API_KEY_PREFIX):
            what = "is a Rivya API key (rvya_sk_…), not a webhook signing secret"
        else:
            what = f"does not start with {SECRET_PREFIX}"
        raise WebhookVerificationError(
            WebhookVerificationError.WRONG_SECRET_PREFIX,
            f"Secret #{position} {what}; use the endpoint's {SECRET_PREFIX}… signing secret.",
        )
    return secret_list


def _header(lowered: Mapping[str, str], name: str) -> str:
    value = lowered.get(name.lower())
    if not value:
        raise WebhookVerificationError(
            WebhookVerificationError.MISSING_HEADER,
            f"The {name} header is missing or empty; the request was not signed by Rivya "
            "or a proxy removed the header.",
        )
    return value


def _parse_signatures(value: str) -> list[str]:
    found = []
    for token in _SEPARATORS.split(value.strip()):
        version, equals, digest = token.partition("=")
        if not equals:
            raise _malformed(SIGNATURE_HEADER, f"entry {token[:20]!r} is not of the form v1=<hex>")
        if version != SIGNATURE_VERSION:
            continue
        if not _HEX_DIGEST.fullmatch(digest):
            raise _malformed(SIGNATURE_HEADER, "a v1 value is not 64 lowercase hex characters")
        found.append(digest)
    if not found:
        raise _malformed(SIGNATURE_HEADER, f"it carries no {SIGNATURE_VERSION}= signature")
    return found


def _parse_timestamp(value: str) -> int:
    if not _TIMESTAMP.fullmatch(value):
        raise _malformed(TIMESTAMP_HEADER, "it must be whole unix seconds")
    return int(value)


def _malformed(name: str, problem: str) -> WebhookVerificationError:
    return WebhookVerificationError(
        WebhookVerificationError.MALFORMED_HEADER, f"The {name} header is malformed: {problem}."
    )


def _check_age(timestamp: int, now: float, tolerance: int) -> None:
    drift = round(now - timestamp)
    if drift > tolerance:
        raise WebhookVerificationError(
            WebhookVerificationError.TIMESTAMP_TOO_OLD,
            f"The timestamp is {drift} s old, over the {tolerance} s tolerance; "
            "the delivery may be a replay, or this server's clock is behind.",
        )
    if -drift > tolerance:
        raise WebhookVerificationError(
            WebhookVerificationError.TIMESTAMP_IN_FUTURE,
            f"The timestamp is {-drift} s in the future, over the {tolerance} s tolerance; "
            "check this server's clock.",
        )


def _matching_secret(secrets: list[str], raw_timestamp: str, body: bytes, given: list[str]) -> int:
    for index, secret in enumerate(secrets):
        expected = compute_signature(secret, raw_timestamp, body)
        # Compare against every value without stopping early so timing says nothing about which.
        if any([hmac.compare_digest(expected, digest) for digest in given]):
            return index
    raise WebhookVerificationError(
        WebhookVerificationError.NO_MATCHING_SIGNATURE,
        f"No signature matched any of the {len(secrets)} secret(s); the body was changed in "
        "transit, or it was signed with another (perhaps rotated) secret.",
    )


def _check_id(msg_id: str, body: bytes) -> None:
    try:
        payload = json.loads(body)
    except ValueError:
        return
    if isinstance(payload, dict) and "id" in payload and payload["id"] != msg_id:
        raise WebhookVerificationError(
            WebhookVerificationError.ID_MISMATCH,
            f"The {ID_HEADER} header does not match the body's id; the header was altered.",
        )
