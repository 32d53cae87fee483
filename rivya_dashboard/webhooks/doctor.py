"""The signature doctor: why a delivery did or did not verify, step by step, in plain words.

`signing.verify` gives the receiver's yes or no; the doctor runs every check even after one
fails and then searches for the likely cause: a secret rotated out, a timestamp or id header
edited after signing, a body re-serialized, re-encoded or given a trailing newline. When a stored
copy of the same event is known, it names the first byte where the bodies differ.
"""

import contextlib
import hashlib
import hmac
import json
import re
import shlex
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from rivya_dashboard.rivya import signing

HEX_DIGEST = re.compile(r"[0-9a-f]{64}")
TIMESTAMP = re.compile(r"[0-9]{1,15}")
SEPARATORS = re.compile(r"[\s,]+")


@dataclass(frozen=True)
class Candidate:
    """A secret the doctor may try; `state` is current, previous, retired or pasted."""

    value: str
    state: str
    label: str

    @property
    def accepted(self) -> bool:
        return self.state != "retired"


@dataclass(frozen=True)
class Step:
    title: str
    ok: bool | None  # None: not checked, because an earlier step made it meaningless
    detail: str


@dataclass
class Diagnosis:
    steps: list[Step] = field(default_factory=list)
    cause: str = "ok"
    summary: str = ""
    fix: str = ""
    differs_at: int | None = None
    matched: Candidate | None = None

    @property
    def ok(self) -> bool:
        return self.cause == "ok"

    def add(self, title: str, ok: bool | None, detail: str) -> None:
        self.steps.append(Step(title, ok, detail))

    def fail(self, cause: str, summary: str, fix: str) -> None:
        # The first cause found is the root one; later steps only add detail.
        if self.cause == "ok":
            self.cause, self.summary, self.fix = cause, summary, fix


def signature_for(secret: str, timestamp: str, body: bytes) -> str:
    signed = timestamp.encode("utf-8", "surrogateescape") + b"." + body
    return hmac.new(secret.encode("utf-8"), signed, hashlib.sha256).hexdigest()


def first_difference(a: bytes, b: bytes) -> int | None:
    for offset, (x, y) in enumerate(zip(a, b, strict=False)):
        if x != y:
            return offset
    return None if len(a) == len(b) else min(len(a), len(b))


def diagnose(
    candidates: list[Candidate],
    headers: Mapping[str, str],
    body: bytes,
    *,
    now: float | None = None,
    tolerance: int = signing.DEFAULT_TOLERANCE,
    reference_body: bytes | None = None,
) -> Diagnosis:
    now = time.time() if now is None else now
    result = Diagnosis()
    lowered = {name.lower(): value for name, value in headers.items()}
    values = check_headers(result, lowered)
    secrets = check_secrets(result, candidates)
    if values is None:
        return result
    msg_id, timestamp, signatures = values
    age = check_age(result, timestamp, now, tolerance)
    matched = check_signature(result, secrets, timestamp, body, signatures)
    if matched is None:
        explain_mismatch(result, candidates, timestamp, body, signatures, reference_body)
        return result
    result.matched = matched
    if age == "malformed":
        result.fail(
            "malformed_header",
            _("The %(header)s header is not whole unix seconds.")
            % {"header": signing.TIMESTAMP_HEADER},
            _("Sign with the current unix time in whole seconds."),
        )
        return result
    if age != "ok":
        result.fail(
            "timestamp_in_future" if age == "future" else "timestamp_too_old",
            _("The signature is genuine but the timestamp is outside the tolerance."),
            _(
                "A replay of an old delivery, or a clock that is off: sync this server's clock "
                "(NTP); re-send old deliveries from Rivya instead of replaying captured ones."
            ),
        )
        return result
    check_id(result, msg_id, body)
    if result.ok:
        result.summary = _("The delivery is genuine: every check passed.")
    return result


def check_headers(result: Diagnosis, lowered: dict[str, str]) -> tuple[str, str, list] | None:
    names = (signing.ID_HEADER, signing.TIMESTAMP_HEADER, signing.SIGNATURE_HEADER)
    missing = [name for name in names if not lowered.get(name.lower())]
    if missing:
        text = _("Missing or empty: %(names)s.") % {"names": ", ".join(missing)}
        result.add(_("Signature headers present"), False, text)
        result.fail(
            "missing_header",
            _("The request carries no complete Rivya signature."),
            _(
                "Check that nothing between Rivya and your code (proxy, load balancer, framework) "
                "drops the Rivya-Webhook-* headers, and read header names case-insensitively."
            ),
        )
        return None
    result.add(_("Signature headers present"), True, ", ".join(names))
    msg_id = lowered[names[0].lower()]
    timestamp = lowered[names[1].lower()]
    signatures, problem = parse_signatures(lowered[names[2].lower()])
    if problem:
        result.add(_("Signature header well formed"), False, problem)
        result.fail(
            "malformed_header",
            problem,
            _("Pass the header through unchanged; it must read v1=<64 lowercase hex digits>."),
        )
        return None
    result.add(
        _("Signature header well formed"),
        True,
        ngettext("%(count)s v1 signature.", "%(count)s v1 signatures.", len(signatures))
        % {"count": len(signatures)},
    )
    return msg_id, timestamp, signatures


def parse_signatures(value: str) -> tuple[list[str], str]:
    found = []
    for entry in SEPARATORS.split(value.strip()):
        version, equals, digest = entry.partition("=")
        if not equals:
            # Splitting on commas turns "v1,<base64>" into a bare "v1" entry.
            if entry == signing.SIGNATURE_VERSION:
                return [], _(
                    "It looks like a Standard Webhooks signature (v1,<base64>); Rivya signs "
                    "with v1=<hex>."
                )
            return [], _("An entry is not of the form v1=<hex>.")
        if version != signing.SIGNATURE_VERSION:
            continue
        if not HEX_DIGEST.fullmatch(digest):
            return [], _("A v1 value is not 64 lowercase hex digits (was it upper-cased?).")
        found.append(digest)
    if not found:
        return [], _("The header carries no v1= signature.")
    return found, ""


def check_secrets(result: Diagnosis, candidates: list[Candidate]) -> list[Candidate]:
    accepted = [c for c in candidates if c.accepted]
    if not accepted:
        result.add(_("Signing secret"), False, _("This inbox has no secret to verify with."))
        result.fail(
            "no_secret",
            _("There is no secret to check the signature against."),
            _("Store the endpoint's whsec_ signing secret in the inbox."),
        )
        return []
    wrong = [c for c in accepted if not c.value.startswith(signing.SECRET_PREFIX)]
    for candidate in wrong:
        if candidate.value.startswith(signing.API_KEY_PREFIX):
            text = _("%(label)s is a Rivya API key (rvya_sk_…), not a webhook signing secret.")
        else:
            text = _("%(label)s does not start with whsec_.")
        result.add(_("Signing secret"), False, text % {"label": candidate.label})
    usable = [c for c in accepted if c.value.startswith(signing.SECRET_PREFIX)]
    if wrong and not usable:
        result.fail(
            "wrong_secret_kind",
            _("The secret is the wrong kind: an API key or other value where a whsec_ belongs."),
            _(
                "Use the signing secret shown when the endpoint was created or its secret "
                "rotated; it starts with whsec_. API keys never sign webhooks."
            ),
        )
    elif usable:
        labels = ", ".join(c.label for c in usable)
        result.add(_("Signing secret"), True, _("Trying %(labels)s.") % {"labels": labels})
    return usable


def check_age(result: Diagnosis, timestamp: str, now: float, tolerance: int) -> str:
    """ "ok", "old", "future" or "malformed"."""
    title = _("Timestamp within %(seconds)s s") % {"seconds": tolerance}
    if not TIMESTAMP.fullmatch(timestamp):
        result.add(title, False, _("The timestamp is not whole unix seconds."))
        return "malformed"
    drift = round(now - int(timestamp))
    if drift > tolerance:
        text = _("It is %(drift)s s old, %(over)s s past the tolerance.") % {
            "drift": drift,
            "over": drift - tolerance,
        }
        result.add(title, False, text)
        return "old"
    if -drift > tolerance:
        text = _("It is %(drift)s s in the future, %(over)s s past the tolerance.") % {
            "drift": -drift,
            "over": -drift - tolerance,
        }
        result.add(title, False, text)
        return "future"
    result.add(title, True, _("Signed %(drift)s s before it was checked.") % {"drift": drift})
    return "ok"


def check_signature(
    result: Diagnosis,
    secrets: list[Candidate],
    timestamp: str,
    body: bytes,
    signatures: list[str],
) -> Candidate | None:
    title = _("Signature matches a secret")
    if not secrets:
        result.add(title, None, _("Not checked: no usable secret."))
        return None
    matched = match(secrets, timestamp, body, signatures)
    if matched is None:
        result.add(title, False, _("No secret of this inbox produced the signature."))
        return None
    if matched.state == "previous":
        text = _(
            "It matches %(label)s, still accepted during the rotation overlap. End the overlap "
            "once the sender signs with the new secret."
        )
    else:
        text = _("It matches %(label)s.")
    result.add(title, True, text % {"label": matched.label})
    return matched


def match(
    secrets: list[Candidate], timestamp: str, body: bytes, signatures: list[str]
) -> Candidate | None:
    for candidate in secrets:
        expected = signature_for(candidate.value, timestamp, body)
        if any([hmac.compare_digest(expected, given) for given in signatures]):
            return candidate
    return None


def explain_mismatch(
    result: Diagnosis,
    candidates: list[Candidate],
    timestamp: str,
    body: bytes,
    signatures: list[str],
    reference_body: bytes | None,
) -> None:
    if not result.ok:
        return
    usable = [c for c in candidates if c.value.startswith(signing.SECRET_PREFIX)]
    for finder in (rotated_out, timestamp_edit, body_variant):
        if finder(result, usable, timestamp, body, signatures):
            return
    if reference_body is not None and reference_body != body:
        offset = first_difference(body, reference_body)
        result.differs_at = offset
        if same_json(body, reference_body):
            summary, fix = VARIANT_TEXT["body_reserialized"]()
            result.fail("body_reserialized", summary % {"offset": offset}, fix)
            return
        result.fail(
            "body_changed",
            _(
                "The body differs from the stored copy of this event at byte %(offset)s: it "
                "was changed after signing."
            )
            % {"offset": offset},
            _("Verify the raw request bytes before any parsing, decoding or logging middleware."),
        )
        return
    result.fail(
        "signature_mismatch",
        _(
            "No secret produced this signature: the body or timestamp changed after signing, "
            "or the sender signs with a secret this inbox does not have."
        ),
        _(
            "Verify the raw request bytes, and compare the endpoint's secret preview with the "
            "secrets stored here; rotate the secret if it was lost."
        ),
    )


def rotated_out(
    result: Diagnosis, usable: list[Candidate], timestamp: str, body: bytes, sigs: list[str]
) -> bool:
    retired = [c for c in usable if not c.accepted]
    matched = match(retired, timestamp, body, sigs)
    if matched is None:
        return False
    result.matched = matched
    result.fail(
        "rotated_secret",
        _("It was signed with the %(label)s, which this inbox no longer accepts.")
        % {"label": matched.label},
        _(
            "The sender still signs with the old secret, or this is a delivery captured before "
            "the rotation: update the sender's secret, or re-send the event."
        ),
    )
    return True


def timestamp_edit(
    result: Diagnosis, usable: list[Candidate], timestamp: str, body: bytes, sigs: list[str]
) -> bool:
    """One character of the timestamp header changed after signing (digit search, ≤ 150 HMACs)."""
    accepted = [c for c in usable if c.accepted]
    for position in range(min(len(timestamp), 15)):
        for digit in "0123456789":
            if timestamp[position] == digit:
                continue
            original = timestamp[:position] + digit + timestamp[position + 1 :]
            if match(accepted, original, body, sigs) is not None:
                result.fail(
                    "timestamp_changed",
                    _(
                        "The %(header)s header was changed after signing: the signature is for "
                        "%(original)s, the header says %(given)s."
                    )
                    % {
                        "header": signing.TIMESTAMP_HEADER,
                        "original": original,
                        "given": timestamp,
                    },
                    _("Pass the Rivya-Webhook-* headers through unchanged."),
                )
                return True
    return False


def body_variants(body: bytes) -> list[tuple[str, bytes]]:
    variants: list[tuple[str, bytes]] = []
    stripped = body.rstrip(b"\r\n")
    if stripped != body:
        variants.append(("newline_added", stripped))
    if body.startswith(b"\xef\xbb\xbf"):
        variants.append(("encoding_changed", body[3:]))
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return variants
    with contextlib.suppress(UnicodeEncodeError):
        variants.append(("encoding_changed", text.encode("latin-1")))
    try:
        parsed = json.loads(text)
    except ValueError:
        return variants
    for ensure_ascii in (False, True):
        for separators in ((",", ":"), (", ", ": ")):
            dumped = json.dumps(parsed, separators=separators, ensure_ascii=ensure_ascii)
            # Only a body whose non-ASCII text changed form (raw versus \u escapes) was
            # re-encoded; an all-ASCII body dumped either way was only re-spaced or re-ordered.
            cause = (
                "encoding_changed" if dumped.isascii() != text.isascii() else "body_reserialized"
            )
            variants.append((cause, dumped.encode()))
    return [(cause, variant) for cause, variant in variants if variant != body]


VARIANT_TEXT: dict[str, Callable[[], tuple[str, str]]] = {
    "newline_added": lambda: (
        _("A line break was added to the end of the body (at byte %(offset)s) after signing."),
        _("Verify the raw body as received; do not strip, append or normalise line endings."),
    ),
    "body_reserialized": lambda: (
        _(
            "The body is the same JSON re-serialized after signing: whitespace or key order "
            "changed; verify the raw bytes. It first differs at byte %(offset)s."
        ),
        _(
            "Verify the raw request bytes (e.g. request.body in Django, express.raw() in "
            "Express) before parsing the JSON."
        ),
    ),
    "encoding_changed": lambda: (
        _(
            "The body's text encoding changed after signing (UTF-8 versus Latin-1, \\u escapes "
            "or a byte-order mark); it first differs at byte %(offset)s."
        ),
        _("Verify the raw bytes; never decode and re-encode the body before checking it."),
    ),
}


def same_json(body: bytes, other: bytes) -> bool:
    try:
        return json.loads(body) == json.loads(other)
    except ValueError:
        return False


def body_variant(
    result: Diagnosis, usable: list[Candidate], timestamp: str, body: bytes, sigs: list[str]
) -> bool:
    accepted = [c for c in usable if c.accepted]
    for cause, variant in body_variants(body):
        if match(accepted, timestamp, variant, sigs) is None:
            continue
        offset = first_difference(body, variant)
        result.differs_at = offset
        summary, fix = VARIANT_TEXT[cause]()
        result.fail(cause, summary % {"offset": offset}, fix)
        return True
    return False


def check_id(result: Diagnosis, msg_id: str, body: bytes) -> None:
    title = _("Id header matches the body")
    try:
        payload = json.loads(body)
    except ValueError:
        result.add(title, None, _("Not checked: the body is not JSON."))
        return
    body_id = payload.get("id") if isinstance(payload, dict) else None
    if body_id is None or body_id == msg_id:
        result.add(title, True, msg_id)
        return
    position = first_difference(msg_id.encode("utf-8", "surrogateescape"), str(body_id).encode())
    result.add(
        title,
        False,
        _("The header says %(header)s, the body says %(body)s.")
        % {"header": msg_id, "body": body_id},
    )
    result.fail(
        "id_mismatch",
        _(
            "The %(header)s header was changed after signing (first difference at byte "
            "%(position)s); it is not covered by the signature, so the body's id is the true one."
        )
        % {"header": signing.ID_HEADER, "position": position},
        _("Pass the header through unchanged, and de-duplicate on the verified id."),
    )


def curl_command(url: str, body: bytes, secret: str, msg_id: str, now: float | None = None) -> str:
    """A cURL command that re-sends body signed now with secret (the signature, not the secret,
    is in the command)."""
    timestamp = int(time.time() if now is None else now)
    headers = signing.sign(secret, body, msg_id=msg_id, timestamp=timestamp)
    parts = ["curl", "-sS", "-X", "POST", shlex.quote(url)]
    parts += ["-H", shlex.quote("Content-Type: application/json")]
    for name, value in headers.items():
        parts += ["-H", shlex.quote(f"{name}: {value}")]
    parts += ["--data-binary", shlex.quote(body.decode("utf-8", "replace"))]
    return " ".join(parts)
